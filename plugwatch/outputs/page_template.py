"""The Jinja2 template of the status page (autoescaped; the SVG charts come pre-escaped)."""

TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{{ refresh }}">
<title>{{ title }}</title>
<style>
body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5rem auto; max-width: 60rem;
       padding: 0 1rem; color: #222; background: #fafafa; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem; } h2 { font-size: 1.1rem; margin: 1.6rem 0 .3rem; }
.meta { color: #666; margin-bottom: 1rem; }
.health.bad { color: #b00020; font-weight: 600; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #e5e5e5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.state { display: inline-block; padding: 0 .5rem; border-radius: .6rem; font-weight: 600; }
.state.on, rect.on { background: #c8e6c9; fill: #c8e6c9; }
.state.standby, rect.standby { background: #ffe0a3; fill: #ffe0a3; }
.state.off, rect.off { background: #e0e0e0; fill: #e8e8e8; }
.state.unreachable, rect.unreachable { background: #f8bbbb; fill: #f8bbbb; }
.state.unknown, rect.unknown { background: #fff; fill: #fff; }
svg.chart { width: 100%; height: auto; background: #fff; border: 1px solid #e5e5e5; }
path.power { fill: #1565c0; fill-opacity: .75; stroke: #0d47a1; stroke-width: .6; }
line.axis { stroke: #999; } text.label { font-size: 11px; fill: #555; }
.legend span { margin-right: .8rem; } ul.runs { margin: .3rem 0; padding-left: 1.2rem; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<div class="meta">{{ plugs | length }} plugs ·
  <span class="health {{ 'ok' if health.ok else 'bad' }}">{{ 'healthy' if health.ok
    else health.reason }}</span> ·
  updated <span id="generated">{{ generated }}</span> ({{ zone }}), refreshes every {{ refresh }} s
</div>
<table id="plugs">
<thead><tr><th>plug</th><th>state</th><th>since</th><th>power now</th><th>last reading</th>
<th>energy counter</th><th>last contact</th></tr></thead>
<tbody>
{% for p in plugs %}
<tr class="plug" data-plug="{{ p.name }}">
<td class="name">{% if many %}<a href="plug/{{ p.name }}">{{ p.name }}</a>{% else %}{{ p.name
  }}{% endif %}</td>
<td><span class="state {{ p.state }}">{{ p.state }}</span></td>
<td>{{ p.since }}{% if p.for %} <small>({{ p.for }})</small>{% endif %}</td>
<td class="num power">{{ p.power }}</td><td class="num">{{ p.raw }}</td>
<td class="num">{{ p.energy }}</td><td>{{ p.contact }}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% if many %}<p>Charts: one page per plug (follow a name).</p>{% endif %}
{% if charts %}
<p class="legend">States: <span class="state on">on</span><span class="state standby">standby</span>
<span class="state off">off</span><span class="state unreachable">unreachable</span></p>
{% endif %}
{% for c in charts %}
<section class="plug-chart" data-plug="{{ c.name }}">
<h2>{{ c.name }}</h2>
{{ c.svg | safe }}
{% if c.runs %}
<ul class="runs">
{% for r in c.runs %}
<li class="run">{{ r.start }}: ran {{ r.duration }}, {{ r.energy }}, peak {{ r.peak }}{% if
  r.cost %}, {{ r.cost }}{% endif %}</li>
{% endfor %}
</ul>
{% else %}<p class="runs none">No runs in the last 7 days.</p>{% endif %}
</section>
{% endfor %}
</body>
</html>
"""
