"""The shared test harness of ocsd, registered once as the pytest plugin ``support.plugin``
(tests/conftest.py; ``pythonpath = ["tests"]`` in pyproject.toml makes it importable).

Test modules import helpers from the module that holds them (``from support.receivers
import Receiver``); the fixtures come from :mod:`support.plugin`.

- :mod:`support.net`: 127.0.0.1, free ports, a URI where nothing listens.
- :mod:`support.receivers`: the recording ``Receiver`` and the ``FaultReceiver``.
- :mod:`support.tls`: a throw-away CA and a server certificate for 127.0.0.1.
- :mod:`support.ini`: INI sections of a small configuration, written and replaced.
- :mod:`support.processes`: ``ocsd`` as a subprocess (``ocsd run`` and short commands).
- :mod:`support.control`: a small client of the control API.
- :mod:`support.inprocess`: the in-process daemon (and why the heap is frozen first).
- :mod:`support.waiting`: ``eventually``, a bounded poll.
- :mod:`support.identities`: group identities and snapshots for bodies built by hand.
"""
