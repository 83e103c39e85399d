"""The trace simulator: replays a job trace through the scheduler core on a virtual clock.

``readers`` turn trace files into a ``Trace``; ``cluster`` reads cluster
files; ``policies`` configure the one scheduler core as pool, static or fifo;
``engine`` is the discrete-event clock; ``report``, ``plot`` and ``bound``
turn a replay into figures. ``replay.replay`` ties them together for the
``gpupool simulate`` command and the benchmark.
"""
