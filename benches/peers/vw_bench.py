"""Vowpal Wabbit's half of the side-by-side (see vw.sh and docs/performance.md).

Reads the JSON that `cargo run --release --example peer_bench -- --json` prints: per
catalog shape, the creatives, the people, the 3,000 training impressions and the
engine's own figures. Trains `cb_explore_adf` (epsilon 0.1) on the same impressions,
parses each person's decision once (pre-parsed examples), times `predict` on them one
call at a time, and prints both with the ratio.

Usage: python vw_bench.py ENGINE_JSON [--markdown]
"""

import json
import statistics
import sys
import time

import vowpalwabbit

VW_ARGS = "--cb_explore_adf --epsilon 0.1 -q UA -q XA --quiet"


def shared_line(person):
    scores = " ".join(f"p{p}:{s / 9:.3f}" for p, s in person["scores"])
    context = f"dev_{person['device']} dp_{person['daypart']} w_{person['weather']}"
    return f"shared |U {scores} |X {context}"


def action_line(creative):
    tags = " ".join(f"p{p}:{w:.3f}" for p, w in creative["personas"])
    attrs = " ".join(a.replace("=", "_") for a in creative["attributes"])
    return f"|A {creative['id']} {tags} {attrs}"


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def bench(shape):
    creatives, people = shape["creatives"], shape["people"]
    n = len(creatives)
    actions = [action_line(c) for c in creatives]
    vw = vowpalwabbit.Workspace(VW_ARGS)
    for person, creative, clicked in shape["training"]:
        # Logged uniformly at random: probability 1/n; cost -1 for a click, 0 otherwise.
        label = f"{creative}:{-1.0 if clicked else 0.0}:{1.0 / n}"
        lines = [shared_line(people[person])]
        lines += [f"{label} {a}" if i == creative else a for i, a in enumerate(actions)]
        examples = vw.parse(lines, vowpalwabbit.LabelType.CONTEXTUAL_BANDIT)
        vw.learn(examples)
        vw.finish_example(examples)
    # Pre-parsed decisions: parsing is left out of the timing.
    timed_people = people[: max(32, min(len(people), 200_000 // n))]
    parsed = [
        vw.parse([shared_line(p)] + actions, vowpalwabbit.LabelType.CONTEXTUAL_BANDIT) for p in timed_people
    ]
    calls = max(500, min(5_000, 2_000_000 // n))
    for i in range(min(calls // 10, 200)):
        vw.predict(parsed[i % len(parsed)])
    micros = []
    for i in range(calls):
        examples = parsed[i % len(parsed)]
        start = time.perf_counter_ns()
        pmf = vw.predict(examples)
        micros.append((time.perf_counter_ns() - start) / 1_000)
        if len(pmf) != n:
            raise SystemExit(f"VW returned {len(pmf)} probabilities for {n} actions")
    for examples in parsed:
        vw.finish_example(examples)
    vw.finish()
    return {"p50_us": statistics.median(micros), "p99_us": percentile(micros, 0.99), "calls": calls}


def main():
    if len(sys.argv) < 2:
        raise SystemExit("usage: vw_bench.py ENGINE_JSON")
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = json.load(f)
    print(f"Vowpal Wabbit {vowpalwabbit.__version__}: {VW_ARGS}, pre-parsed examples; "
          f"both trained on {doc['training_impressions']} random impressions; "
          "median (p99) µs per decision, select one of N")
    print()
    print("| N | VW pre-parsed | engine greedy | engine ε-greedy 0.1 | engine Thompson |")
    print("|---|---|---|---|---|")
    for shape in doc["shapes"]:
        vw = bench(shape)
        cells = [f"{vw['p50_us']:,.1f} ({vw['p99_us']:,.0f})"]
        for policy in ("greedy", "epsilon_greedy", "thompson"):
            e = shape["engine"][policy]
            ratio = vw["p50_us"] / e["p50_us"]
            cells.append(f"{e['p50_us']:.2f} ({e['p99_us']:.1f}): {ratio:,.0f}× faster")
        print(f"| {shape['candidates']:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
