"""A killed thread's objects go with it: right after kill() returns, its frames
and what their locals held (a socket, a buffer) are gone, with the cycle
collector off. Looking at a thread first (threads(), stack(), the live table)
leaves no frame of it behind either."""
import pytest

from tests import run_json

VICTIMS = r"""
import gc, json, socket, sys, threading, time, weakref
import ipy_threadkill
gc.disable()                    # nothing may rely on a collection

class Payload:
    pass

def victim(kind, ready, refs, peers):
    payload = Payload()
    refs[kind] = weakref.ref(payload)
    mine, peer = socket.socketpair()
    peers[kind] = peer
    ready.set()
    if kind == "cpu":
        while True:
            pass
    elif kind == "sleep":
        time.sleep(600)
    elif kind == "recv":
        mine.recv(1)
    elif kind == "event":
        threading.Event().wait(600)

def closed(peer):
    peer.settimeout(5)          # the victim's end closes when its frame goes
    try:
        return peer.recv(1) == b""
    except OSError:
        return False

refs, peers, out = {}, {}, {}
for kind in ("cpu", "sleep", "recv", "event"):
    ready = threading.Event()
    t = threading.Thread(target=victim, args=(kind, ready, refs, peers), daemon=True)
    t.start(); ready.wait(10)
    LOOK(t)
    ipy_threadkill.kill(t.ident)
    out[kind] = {"payload_gone": refs[kind]() is None, "socket_closed": closed(peers[kind])}
print(json.dumps(out))
"""

LOOKS = {
    "kill alone": "def LOOK(t): pass",
    "snapshot and stack": "def LOOK(t):\n    ipy_threadkill.threads(); ipy_threadkill.stack(t.ident)",
    "live table": "def LOOK(t):\n"
                  "    from ipy_threadkill.widget import ThreadTable\n"
                  "    table = ThreadTable(refresh_interval=None); table.refresh(); table.close()",
}


@pytest.mark.parametrize("look", sorted(LOOKS))
def test_the_victims_objects_are_gone_when_kill_returns(look):
    if look == "live table":
        pytest.importorskip("ipywidgets")
    code = VICTIMS.replace("refs, peers, out = {}", LOOKS[look] + "\nrefs, peers, out = {}", 1)
    out = run_json(code, timeout=90)
    for kind, seen in out.items():
        assert seen == {"payload_gone": True, "socket_closed": True}, (kind, out)
