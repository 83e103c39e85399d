"""The ``gpupool`` command: one CLI for the whole product."""
