import sys

import pytest

# 3.9 and 3.10 can hand the GIL to the killer at a finally handler's first
# instruction before the frame's line says it is there: a kill whose system
# call was made to fail (the error unwinding through that finally) can then
# still queue its exception there, and cut the finally short. Seen now and then
# (1 run in several); the kill's lock check then reports it.
FINALLY_START_RACE = pytest.mark.xfail(
    sys.version_info < (3, 11), strict=False,
    reason="3.9/3.10: the GIL can change hands at a finally's first instruction "
           "before the frame's line moves there")
