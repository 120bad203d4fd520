"""ringmgr: the lifecycle of an OpenStack Swift cluster's rings and storage nodes."""

__version__ = "0.1.0"
