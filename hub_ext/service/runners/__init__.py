"""Where batch jobs run: one interface (``base.Runner``), one implementation per backend."""
