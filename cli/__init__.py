"""The ``driftloop`` command line and the commands that run no flow (export, review): the top layer."""
