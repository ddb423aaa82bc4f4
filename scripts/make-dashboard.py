#!/usr/bin/python3
"""Writes docs/grafana-ordo.json, the Grafana dashboard for the metrics of
ordo-server and ordo-projector (docs/metrics.md). Edit the panels here, then:
scripts/make-dashboard.py > docs/grafana-ordo.json
tests/e2e_metrics.py checks that every metric it uses is served."""
import json
panels = []
def ts(title, exprs, unit="short", x=0, y=0, w=12, h=8, desc=""):
    panels.append({
        "type": "timeseries", "title": title, "description": desc,
        "datasource": {"type": "prometheus", "uid": "${DS_PROMETHEUS}"},
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"},
                    "tooltip": {"mode": "multi"}},
        "targets": [{"refId": chr(65 + i), "expr": e, "legendFormat": l,
                     "datasource": {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}}
                    for i, (e, l) in enumerate(exprs)],
    })
def stat(title, expr, unit="short", x=0, y=0, w=4, h=4, desc=""):
    panels.append({
        "type": "stat", "title": title, "description": desc,
        "datasource": {"type": "prometheus", "uid": "${DS_PROMETHEUS}"},
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "value", "graphMode": "area"},
        "targets": [{"refId": "A", "expr": expr, "legendFormat": "",
                     "datasource": {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}}],
    })
J = '{job=~"$job"}'
def q(metric, extra=""):
    return metric + '{job=~"$job"%s}' % extra
row = 0
stat("Events appended/s", 'sum(rate(%s[1m]))' % q("ordo_events_appended_total"), "short", 0, row)
stat("Head position", 'max(%s)' % q("ordo_head_position"), "short", 4, row)
stat("Orders in memory", 'sum(%s)' % q("ordo_orders_in_memory"), "short", 8, row)
stat("Client connections", 'sum(%s)' % q("ordo_connections"), "short", 12, row)
stat("Command p99", 'histogram_quantile(0.99, sum by (le) (rate(%s[5m])))' % q("ordo_command_duration_seconds_bucket"), "s", 16, row)
stat("Log failed", 'max(%s)' % q("ordo_log_failed"), "short", 20, row,
     desc="1 once the log could not be written: commands get unavailable until a restart")
row = 4
ts("Commands/s by type", [('sum by (type) (rate(%s[1m]))' % q("ordo_commands_total"), "{{type}}")], "reqps", 0, row)
ts("Errors/s by code", [('sum by (code) (rate(%s[1m]))' % q("ordo_errors_total"), "{{code}}"),
                        ('sum(rate(%s[1m]))' % q("ordo_requests_invalid_total"), "undecodable")], "reqps", 12, row)
row = 12
ts("Command latency", [
    ('histogram_quantile(%s, sum by (le) (rate(%s[5m])))' % (p, q("ordo_command_duration_seconds_bucket")), "p%s" % int(float(p) * 100))
    for p in ("0.5", "0.95", "0.99")], "s", 0, row,
   desc="From the front end reading the command to handing back its reply (the event durable per the fsync mode)")
ts("Queries/s by type, and latency", [
    ('sum by (type) (rate(%s[1m]))' % q("ordo_queries_total"), "{{type}}/s"),
    ('histogram_quantile(0.99, sum by (le) (rate(%s[5m])))' % q("ordo_query_duration_seconds_bucket"), "p99 (s)")], "short", 12, row)
row = 20
ts("fsync latency", [
    ('histogram_quantile(%s, sum by (le) (rate(%s[5m])))' % (p, q("ordo_fsync_duration_seconds_bucket")), "p%s" % int(float(p) * 100))
    for p in ("0.5", "0.99")] + [('sum(rate(%s[1m]))' % q("ordo_fsyncs_total"), "fsyncs/s")], "s", 0, row)
ts("Group commit", [
    ('sum(rate(%s[1m])) / sum(rate(%s[1m]))' % (q("ordo_frame_events_sum"), q("ordo_frame_events_count")), "events per frame"),
    ('sum(rate(%s[1m])) / sum(rate(%s[1m]))' % (q("ordo_frame_size_bytes_sum"), q("ordo_frame_size_bytes_count")), "bytes per frame"),
    ('sum(rate(%s[1m]))' % q("ordo_log_bytes_written_total"), "log bytes/s")], "short", 12, row)
row = 28
ts("Orders and snapshots", [
    ('sum(%s)' % q("ordo_orders_in_memory"), "in memory"),
    ('sum(%s)' % q("ordo_orders_known"), "known"),
    ('max(%s) - max(%s)' % (q("ordo_head_position"), q("ordo_snapshot_position")), "events since the newest snapshot")], "short", 0, row)
ts("Connections", [('sum by (socket) (%s)' % q("ordo_connections"), "engine {{socket}}"),
                   ('sum(%s)' % q("ordo_projector_connections"), "projector")], "short", 12, row)
row = 36
ts("Projection lag (events)", [('max by (projection) (%s)' % q("ordo_projection_lag_events"), "{{projection}}")], "short", 0, row,
   desc="Events between the engine's head and each projection's position")
ts("Projector", [
    ('sum by (projection) (rate(%s[1m]))' % q("ordo_projection_events_applied_total"), "{{projection}} events/s"),
    ('histogram_quantile(0.99, sum by (le) (rate(%s[5m])))' % q("ordo_projector_query_duration_seconds_bucket"), "query p99 (s)"),
    ('sum by (code) (rate(%s[1m]))' % q("ordo_projector_errors_total"), "errors {{code}}/s")], "short", 12, row)
for i, p in enumerate(panels):
    p["id"] = i + 1
dash = {
    "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource",
                  "pluginId": "prometheus", "pluginName": "Prometheus"}],
    "__requires": [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "9.0.0"},
                   {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}],
    "title": "Ordo", "uid": "ordo-engine", "tags": ["ordo"], "timezone": "utc",
    "schemaVersion": 37, "version": 1, "refresh": "10s",
    "time": {"from": "now-1h", "to": "now"},
    "templating": {"list": [{
        "name": "job", "label": "job", "type": "query",
        "datasource": {"type": "prometheus", "uid": "${DS_PROMETHEUS}"},
        "query": {"query": "label_values({__name__=~\"ordo_(projector_)?start_time_seconds\"}, job)", "refId": "job"},
        "definition": "label_values({__name__=~\"ordo_(projector_)?start_time_seconds\"}, job)",
        "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]}}]},
    "panels": panels,
}
print(json.dumps(dash, indent=2))
