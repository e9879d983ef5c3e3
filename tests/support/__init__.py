"""Helpers of the test suite: pytest plugins (``netutil``, ``aioutil``,
``figures``, ``tlsutil``, loaded by ``tests/conftest.py``), modules the tests
import, and scripts they run in subprocesses (``stdlib_suites.py``,
``https_server.py``, ``python -m support.nsutil client``)."""
