"""Reference kernels: the specification. ``lbkit._fast`` mirrors every module here."""
