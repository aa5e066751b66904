// UNIX domain socket interfaces.
