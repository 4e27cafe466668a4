"""The application on top of the library: run configs and directories, the train / sample / impute /
evaluate workflows, ``polydiff compare``, the command line and the Python API (:mod:`polydiff.app.api`)."""
