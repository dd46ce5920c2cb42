"""Replay: the desk's decisions over recorded captures or a simulator profile, at full speed on a virtual
clock (``engine``), the market it reads (``sources``) and the report it writes (``report``); the command is
``manage.py replay``."""
