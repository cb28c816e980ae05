"""The ``medchain`` command line: one click group (``main``), one module per command family.

``common`` holds what every command shares (the root group that turns every
error into one line, options, node and key resolution, output); ``ops``,
``identity``, ``ehr`` and ``drugs`` hold the commands.
"""
