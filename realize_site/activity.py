"""Transfer throughput and cache use over a span, read from the samples
(realize_site.sampling) and put in the span's buckets (realize_site.lib.charts): what the
activity page draws and the API gives."""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from realize_site.lib import charts
from realize_site.models import CacheSample, TrafficSample
from realize_site.sampling import EVERY

# A sample counts the minute before it was taken: it goes in the bucket of that minute.
LAG = dt.timedelta(seconds=EVERY / 2)


@dataclass(frozen=True)
class PeerTraffic:
    peer: str
    sent: int  # bytes over the span
    received: int
    rates: list[tuple[float, float]]  # per bucket: bytes per second sent, received


@dataclass(frozen=True)
class Activity:
    span: charts.Span
    window: charts.Window
    rates: list[tuple[float, float]]  # all peers: bytes per second sent, received
    peers: list[PeerTraffic]
    cache: list[tuple[int, int] | None]  # per bucket: bytes held, bound; None: no sample

    @property
    def points(self) -> list[dict]:
        """Per bucket: its start, the rates each way and the cache's figures."""
        return [
            {
                "at": at,
                "sent": sent,
                "received": received,
                "held": cache[0] if cache else None,
                "limit": cache[1] if cache else None,
            }
            for at, (sent, received), cache in zip(
                self.window.starts(), self.rates, self.cache, strict=True
            )
        ]


def activity(span: charts.Span, now: dt.datetime | None = None) -> Activity:
    win = charts.window(span, now or timezone.now(), dt.timedelta(seconds=EVERY))
    # Samples are placed LAG earlier: those just past the window's end belong in it.
    rows = TrafficSample.objects.between(win.start, win.end + LAG).values_list(
        "at", "peer", "sent", "received"
    )
    by_peer: dict[str, list[tuple[dt.datetime, int, int]]] = defaultdict(list)
    for at, peer, sent, received in rows:
        by_peer[peer].append((at, sent, received))
    seconds = win.step.total_seconds()
    peers = []
    for peer, samples in sorted(by_peer.items()):
        rates = charts.rates(samples, win, LAG)
        sent = round(sum(s for s, _ in rates) * seconds)
        received = round(sum(r for _, r in rates) * seconds)
        if sent or received:
            peers.append(PeerTraffic(peer, sent, received, rates))
    cache = CacheSample.objects.between(win.start, win.end + LAG).values_list("at", "held", "limit")
    return Activity(
        span=span,
        window=win,
        rates=[
            (sum(p.rates[i][0] for p in peers), sum(p.rates[i][1] for p in peers))
            for i in range(win.count)
        ],
        peers=peers,
        cache=charts.latest(cache, win, LAG),
    )


def throughput_chart(found: Activity, tz: dt.tzinfo) -> charts.Chart:
    received = [r for _, r in found.rates]
    sent = [s for s, _ in found.rates]
    return charts.chart(
        found.window,
        {"received": received, "sent": sent},
        charts.byte_axis(max(received + sent), per="/s"),
        found.span.tick,
        tz,
        filled=["received"],
    )


def cache_chart(found: Activity, tz: dt.tzinfo) -> charts.Chart:
    held = [c[0] if c else None for c in found.cache]
    limit = [c[1] if c else None for c in found.cache]
    return charts.chart(
        found.window,
        {"held": held, "limit": limit},
        charts.byte_axis(max([v for v in held + limit if v is not None], default=0)),
        found.span.tick,
        tz,
        filled=["held"],
    )


def throughput_summary(found: Activity) -> str:
    """The chart in a sentence, for a screen reader."""
    if not found.peers:
        return f"Nothing was sent or received over the last {found.span.name}."
    seconds = found.window.step.total_seconds()
    parts = []
    for index, way in ((1, "received"), (0, "sent")):
        values = [rate[index] for rate in found.rates]
        total = round(sum(values) * seconds)
        parts.append(
            f"{way} {filesizeformat(total)} in all, at most {filesizeformat(max(values))}/s"
        )
    return f"Over the last {found.span.name}: " + "; ".join(parts) + "."


def cache_summary(found: Activity) -> str:
    readings = [c for c in found.cache if c is not None]
    if not readings:
        return f"No reading of the cache over the last {found.span.name}."
    held, limit = readings[-1]
    return (
        f"The cache holds {filesizeformat(held)} of its {filesizeformat(limit)}; over the last "
        f"{found.span.name}, at most {filesizeformat(max(h for h, _ in readings))}."
    )
