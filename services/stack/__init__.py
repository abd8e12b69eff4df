"""The whole stack on one machine: starting it (launcher: `gongji run`, `make run`, the bench and
the tests that need real processes) and reaching it as a caller (connect: tokens and TLS)."""
