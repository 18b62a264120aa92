"""/metrics: the service's counters as Prometheus metrics, built only when scraped.

The per-plug families are written as text by plugwatch.outputs.plugtext (fast at 10,000 plugs);
the service-wide ones here, as prometheus_client metric families.

Labels stay bounded: plug names, failure kinds (a handful of fixed words), states, alert
statuses, and the rule and target names of the config. Nothing is registered globally; each
running service has its own registry (plus the process collector: CPU, memory, open files).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from plugwatch.errors import PlugwatchError
from plugwatch.outputs.live import LiveView
from plugwatch.service.meters import Histogram

log = logging.getLogger(__name__)


def _histogram(name: str, doc: str, labels: list[str]) -> Any:
    from prometheus_client.core import HistogramMetricFamily

    return HistogramMetricFamily(name, doc, labels=labels)


def _add_histogram(family: Any, labels: list[str], hist: Histogram) -> None:
    family.add_metric(labels, hist.cumulative(), hist.sum)


class ServiceCollector:
    """A prometheus_client collector reading one LiveView at scrape time."""

    def __init__(self, view: LiveView, extra: list[Any] | None = None) -> None:
        self.view = view
        self.extra = extra or []  # other collectors' `collect` (e.g. the InfluxDB output)

    def collect(self) -> Iterator[Any]:
        """The service-wide metric families, read now (the per-plug ones: plugtext)."""
        yield from self._service_wide()
        for extra in self.extra:
            yield from extra()

    def _service_wide(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        service = self.view.service
        sampler, writer = service.sampler.stats, service.writer
        health = self.view.health()
        yield GaugeMetricFamily("plugwatch_healthy", "1 while sampling and writing make "
                                "progress (see /healthz)", value=1.0 if health.ok else 0.0)
        yield GaugeMetricFamily("plugwatch_plugs", "plugs sampled by this process",
                                value=len(service.detectors))
        lateness = _histogram("plugwatch_sampler_lateness_seconds",
                              "how late each read started after its planned time", [])
        _add_histogram(lateness, [], sampler.lateness)
        yield lateness
        yield CounterMetricFamily("plugwatch_sampler_skipped_ticks", "ticks skipped because the "
                                  "plug's previous read was still in flight", value=sampler.skipped)
        yield GaugeMetricFamily("plugwatch_sampler_reads_in_flight", "reads in flight now",
                                value=service.sampler.in_flight)
        yield GaugeMetricFamily("plugwatch_writer_queue_depth", "items waiting for the database "
                                "writer", value=writer.queued)
        batch = _histogram("plugwatch_writer_batch_seconds", "time per database batch write", [])
        _add_histogram(batch, [], writer.stats.batch_s)
        yield batch
        yield CounterMetricFamily("plugwatch_writer_readings", "readings written to the database",
                                  value=writer.stats.readings)
        yield CounterMetricFamily("plugwatch_writer_failures", "failed batch writes (retried)",
                                  value=writer.stats.failures)
        yield CounterMetricFamily("plugwatch_writer_set_aside", "records the database refused, "
                                  "kept in dead_letters", value=writer.stats.set_aside)
        yield CounterMetricFamily("plugwatch_writer_thinned", "queued readings dropped to bound "
                                  "memory while the database was away", value=writer.stats.thinned)
        yield from self._outbox()

    def _outbox(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        try:
            by_status, sent = self.view.store.alert_counts()
        except PlugwatchError as exc:  # the database is down: /healthz says so; skip these
            log.debug("outbox metrics skipped: %s", exc)
            return
        outbox = GaugeMetricFamily("plugwatch_outbox_alerts", "alerts in the outbox by status "
                                   "(pending: waiting to be sent, failed: given up)",
                                   labels=["status"])
        for status in ("pending", "failed"):
            outbox.add_metric([status], by_status.get(status, 0))
        yield outbox
        family = CounterMetricFamily("plugwatch_alerts_sent", "alerts delivered, by rule and "
                                     "target", labels=["rule", "target"])
        for rule, target, count in sent:
            family.add_metric([rule, target], count)
        yield family


def render(collector: ServiceCollector) -> bytes:
    """/metrics: the per-plug families, the service-wide ones and the process metrics."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.process_collector import ProcessCollector

    from plugwatch.outputs.plugtext import plug_metrics

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)
    return plug_metrics(collector.view).encode() + generate_latest(registry)



