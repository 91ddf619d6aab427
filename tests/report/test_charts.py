"""The SVG figures: tick values, colours, escaping, gaps in a series."""
import re

from trainwell.report import charts


def test_ticks_are_round_and_cover_the_range():
    assert charts.ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert charts.ticks(0.013, 0.061) == [0.02, 0.03, 0.04, 0.05, 0.06]
    assert charts.ticks(1, 3, integer=True) == [1, 2, 3]  # epochs: no 1.5
    assert charts.ticks(3, 3) == [3]


def test_fmt():
    assert charts.fmt(0.25, percent=True) == "25%"
    assert charts.fmt(0.0001) == "1e-4"
    assert charts.fmt(12345) == "1e4"
    assert charts.fmt(1.5) == "1.5"


def test_heat_colours_run_from_white_to_blue_and_blue_white_red():
    assert charts._heat(0, 0, 1, False) == "#ffffff"
    assert charts._heat(1, 0, 1, False) == "#084594"
    assert charts._heat(0, -1, 1, True) == "#ffffff"
    assert charts._heat(1, -1, 1, True) == "#b2182b"
    assert charts._heat(-1, -1, 1, True) == "#2166ac"
    assert charts._heat(float("nan"), 0, 1, False) == "#ddd"


def test_labels_are_escaped():
    svg = charts.line_chart([{"name": "<script>x</script>", "x": [1, 2], "y": [1, 2]},
                             {"name": "b&\"q\"", "x": [1, 2], "y": [2, 1]}], title="<b>t</b>")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;b&gt;t&lt;/b&gt;" in svg
    assert "b&amp;&quot;q&quot;" in svg
    heat = charts.heatmap([[1, 0], [0, 1]], title="m", rows=["<i>", "b"], cols=["<i>", "b"], numbers=[[1, 0], [0, 1]])
    assert "<i>" not in heat and heat.count("&lt;i&gt;") >= 2


def test_non_finite_points_break_the_line():
    svg = charts.line_chart([{"name": "", "x": [1, 2, 3, 4, 5], "y": [1.0, 2.0, None, 3.0, float("nan")]}], title="t")
    assert svg.count("<polyline") == 1     # 1-2 joined; 4 alone is a dot; None and nan are gaps
    assert svg.count("<circle") == 1


def test_log_axis_drops_non_positive_values_and_has_ticks():
    svg = charts.line_chart([{"name": "", "x": [1, 2, 3], "y": [1e-4, 0.0, 1e-2]}], title="t", log_y=True)
    labels = re.findall(r'text-anchor="end">([^<]+)</text>', svg)
    assert "1e-4" in labels and "0.01" in labels


def test_histogram_turns_log_when_one_bar_dwarfs_the_rest():
    flat = charts.histogram([5, 6, 7], [0, 1, 2, 3], title="h")
    spike = charts.histogram([10000, 6, 7], [0, 1, 2, 3], title="h")
    assert "count (log)" not in flat and "count (log)" in spike


def test_scatter_categories_name_the_columns():
    svg = charts.scatter([{"x": 0, "y": 0.1}, {"x": 1, "y": 0.2}], title="t", xlabel="opt", ylabel="e",
                         categories=["adam", "<sgd>"])
    assert "adam" in svg and "&lt;sgd&gt;" in svg
