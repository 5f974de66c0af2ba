"""wtlab.net"""

# Path models (helper E1): links, loss models, buffers, traces.
from wtlab.net.link import Buffer, CoDel, Link, LinkSpec, LinkStats  # noqa: E402, F401
from wtlab.net.loss import Bernoulli, DropIndices, GilbertElliott  # noqa: E402, F401
from wtlab.net.path import Path  # noqa: E402, F401
from wtlab.net.traces import MahimahiTrace  # noqa: E402, F401
