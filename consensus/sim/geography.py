"""Where simulated validators are, and how long a message takes between two places.

A ``Geography`` is a set of regions with a one-way latency between each pair
and a bandwidth per link; validators are placed in the regions in turn
(validator i in region i mod k).  A message from a to b takes the one-way
latency of their regions, plus up to ``jitter`` of it, plus its size over the
link's bandwidth.  Two validators in one region are ``LOCAL_MS`` apart.

``EUROPE6`` places six regions at real cities.  Their latencies are not
measured pairs but a model: the great-circle distance at ``KM_PER_MS``
kilometres per millisecond plus ``FIXED_MS``, fitted (least squares) to
round trips measured between Milan, Paris, Zurich and Moscow by WonderProxy
("Miles per Millisecond: A Look at the WonderProxy Network", P. Reinheimer,
2011): Milan-Paris 21.5 ms, Milan-Zurich 11.2 ms, Milan-Moscow 67.1 ms,
Paris-Moscow 56.4 ms, Zurich-Moscow 60.3 ms.  The fit gives those five
within 15% (``tests/consensus/test_geography.py`` checks it), and about 86 km
per millisecond: light in fibre covers 200, so routes run about 2.3 times
the straight line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

EARTH_RADIUS_KM = 6371.0
FIXED_MS = 3.39  # per one-way trip: switching, queueing, the last miles
KM_PER_MS = 86.0
LOCAL_MS = 0.5  # two validators in one region (one data centre)

# Round trips measured between cities (WonderProxy, 2011), in ms: what the model is fitted to.
CALIBRATION_RTT_MS = {
    ("Milan", "Paris"): 21.45, ("Milan", "Zurich"): 11.17, ("Milan", "Moscow"): 67.08,
    ("Paris", "Moscow"): 56.4, ("Zurich", "Moscow"): 60.29,
}
CITIES = {  # latitude, longitude
    "London": (51.507, -0.128), "Paris": (48.857, 2.352), "Frankfurt": (50.110, 8.682),
    "Madrid": (40.417, -3.704), "Milan": (45.464, 9.190), "Stockholm": (59.329, 18.069),
    "Zurich": (47.377, 8.540), "Moscow": (55.756, 37.617),
}


def distance_km(a: str, b: str) -> float:
    (lat1, lon1), (lat2, lon2) = CITIES[a], CITIES[b]
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def modelled_one_way_ms(a: str, b: str) -> float:
    return LOCAL_MS if a == b else FIXED_MS + distance_km(a, b) / KM_PER_MS


@dataclass(frozen=True, slots=True)
class Geography:
    regions: tuple[str, ...]
    one_way_ms: tuple[tuple[float, ...], ...]  # [i][j]: region i to region j
    bandwidth_mbps: float = 100.0  # per link, each direction
    jitter: float = 0.1  # up to this share of the latency, drawn per message

    @classmethod
    def of_cities(cls, cities: Sequence[str], bandwidth_mbps: float = 100.0, jitter: float = 0.1) -> Geography:
        matrix = tuple(tuple(modelled_one_way_ms(a, b) for b in cities) for a in cities)
        return cls(tuple(cities), matrix, bandwidth_mbps, jitter)

    def region_of(self, validator: int) -> int:
        return validator % len(self.regions)

    def latency_ms(self, a: int, b: int) -> float:
        """The one-way latency between validators ``a`` and ``b`` before jitter and transmission."""
        return self.one_way_ms[self.region_of(a)][self.region_of(b)]

    def transmission_ms(self, size: int) -> float:
        return size * 8 / (self.bandwidth_mbps * 1000)


EUROPE6 = ("London", "Paris", "Frankfurt", "Madrid", "Milan", "Stockholm")
GEOGRAPHIES = {"europe6": EUROPE6}


def geography(name: str, bandwidth_mbps: float = 100.0) -> Geography:
    return Geography.of_cities(GEOGRAPHIES[name], bandwidth_mbps)
