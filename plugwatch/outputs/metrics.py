"""/metrics: the service's counters as Prometheus metric families, built only when scraped.

Labels stay bounded: plug names, failure kinds (a handful of fixed words), states, alert
statuses, and the rule and target names of the config. Nothing is registered globally; each
running service has its own registry (plus the process collector: CPU, memory, open files).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from plugwatch.errors import PlugwatchError
from plugwatch.meters import Histogram
from plugwatch.model import State
from plugwatch.outputs.live import LiveView

log = logging.getLogger(__name__)

STATE_CODES = {State.UNKNOWN: 0, State.OFF: 1, State.STANDBY: 2, State.ON: 3,
               State.UNREACHABLE: 4}


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
        """Every plugwatch metric family, read now."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        view, service = self.view, self.view.service
        plug = ["plug"]
        state = GaugeMetricFamily("plugwatch_state", "1 for the plug's current state, else 0",
                                  labels=["plug", "state"])
        code = GaugeMetricFamily("plugwatch_state_code", "the plug's state as a number: "
                                 "0 unknown, 1 off, 2 standby, 3 on, 4 unreachable", labels=plug)
        since = GaugeMetricFamily("plugwatch_state_since_timestamp_seconds",
                                  "when the current state began (Unix time)", labels=plug)
        power = GaugeMetricFamily("plugwatch_power_watts", "smoothed power (moving average)",
                                  labels=plug)
        raw = GaugeMetricFamily("plugwatch_power_raw_watts", "power of the last reading",
                                labels=plug)
        energy = CounterMetricFamily("plugwatch_energy_kwh", "the plug's own energy counter",
                                     labels=plug)
        contact = GaugeMetricFamily("plugwatch_last_contact_timestamp_seconds",
                                    "time of the last good reading (Unix time)", labels=plug)
        reads = CounterMetricFamily("plugwatch_reads", "reads handled (good or failed)",
                                    labels=plug)
        failures = CounterMetricFamily("plugwatch_read_failures", "failed reads by kind",
                                       labels=["plug", "reason"])
        latency = _histogram("plugwatch_read_latency_seconds",
                             "from a read's start to its answer or failure", plug)
        transitions = CounterMetricFamily("plugwatch_transitions", "state changes since start",
                                          labels=["plug", "to_state"])
        runs = CounterMetricFamily("plugwatch_runs", "finished runs since start", labels=plug)
        meters = view.meters.plugs
        for name, detector in list(service.detectors.items()):
            current = detector.state
            for s in STATE_CODES:
                state.add_metric([name, str(s)], 1.0 if s is current else 0.0)
            code.add_metric([name], STATE_CODES[current])
            if detector.since is not None:
                since.add_metric([name], detector.since)
            if detector.last_power_w is not None:
                power.add_metric([name], detector.last_power_w)
            last = detector.last
            if last is not None:
                raw.add_metric([name], last[1])
                contact.add_metric([name], last[0])
                if last[2] is not None:
                    energy.add_metric([name], last[2])
            meter = meters.get(name)
            if meter is None:
                continue
            reads.add_metric([name], meter.reads)
            for reason, count in list(meter.failures.items()):
                failures.add_metric([name, reason], count)
            _add_histogram(latency, [name], meter.latency)
            for to_state, count in list(meter.transitions.items()):
                transitions.add_metric([name, to_state], count)
            runs.add_metric([name], meter.runs)
        yield from (state, code, since, power, raw, energy, contact, reads, failures, latency,
                    transitions, runs)
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
    """The Prometheus text exposition of `collector` plus the process metrics."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.process_collector import ProcessCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)
    return generate_latest(registry)



