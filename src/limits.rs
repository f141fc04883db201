//! Every bound dibs enforces, as a named constant. protocol.md lists each of them; change both together.
