"""Vowpal Wabbit learning in the trial's worlds, side by side with the engine.

`cargo run --release --example trial -- --export DIR` writes each world it plays as
DIR/trial-<family>-<seed>.jsonl: the catalog, what every strategy of the trial earned,
then each request in order with what the engine can see, the request's click coin and
the hidden click rate of every creative. This script plays Vowpal Wabbit's contextual
bandit (`cb_explore_adf`) online over the same requests and the same coins: per request
it builds the person (persona scores, top persona) and the moment (device, daypart,
weekend) as shared features and each tagged creative as an action (its id, its persona
tags with their weights, its format and tone), samples a creative from VW's
distribution with its own seeded generator, clicks when the coin is below that
creative's hidden rate, and teaches VW the outcome (cost -1 for a click, 0 otherwise,
with the probability it sampled). Its score is the trial's: the mean hidden rate of what
it showed, as a share of the oracle's.

Usage: python vw_trial.py DIR [--config NAME] [--markdown]
(see vw_trial.sh, which installs VW and runs the trial first)
"""

import glob
import json
import os
import random
import struct
import sys
import time

import vowpalwabbit

# The configurations played: VW's default exploration (epsilon-greedy) and SquareCB,
# each with person × creative and moment × creative interactions (without them the
# shared features shift every action alike and cannot personalize).
# `+match`: the actions also carry the match namespace (see `match_features`). Without
# it VW stays near uniform random within 20,000 requests: it must find which of the
# 1,600 persona × tag crosses matter from a few hundred clicks. The exploration was
# chosen on one world (rank, seed 1000; the figures are in docs/simulation.md): MTR
# (VW's default) with epsilon 0.05 fell from 57 % of the oracle after 6,000 requests
# to 48 % after 20,000 and to 17 % with epsilon 0.02 (an explored pick's importance
# weight is 1 / p, up to 10,000 here); the direct method (`--cb_type dm`) and SquareCB
# with a large gamma scale (10,000: 72-75 %; 1,000: 71 %; 100,000: 25 %) were the best.
CONFIGS = {
    "vw ε-greedy 0.05 (dm)": "--cb_explore_adf --epsilon 0.05 --cb_type dm -q UA -q XA --quiet +match",
    "vw squarecb γ 10⁴": "--cb_explore_adf --squarecb --gamma_scale 10000 -q UA -q XA --quiet +match",
}

# The trial's strategies shown next to VW (names as the trial's tables give them).
ENGINE = ["static rule", "engine greedy", "engine thompson", "engine ε-greedy 0.1"]


def f32(x):
    """The float32 the trial holds for a rate printed in its shortest form."""
    return struct.unpack("f", struct.pack("f", x))[0]


def action_lines(creatives):
    lines = []
    for c in creatives:
        if c["fallback"]:
            continue
        tags = " ".join(f"t{name.replace(' ', '_')}:{w:.4f}" for name, w in c["tags"])
        lines.append(f"|A {c['id']} {tags} f_{c['format']} tone_{c['tone']}")
    return lines


def match_features(creatives, request, personas):
    """Per tagged creative, how its tags meet the person's scores (namespace M): the
    best single match and the sum (tag weight × score / 9), the primary tag's and the
    other tags' matches, and the person's rank of the primary tag's persona. What an
    integrator who knows the catalog's persona tags would hand any learner; the engine
    derives the same from the tags itself."""
    index = {name: i for i, name in enumerate(personas)}
    score = {p: s for p, s in request["scores"]}
    ranked = sorted(score, key=lambda p: (-score[p], p))
    rank = {p: r for r, p in enumerate(ranked)}
    out = []
    for c in creatives:
        if c["fallback"]:
            continue
        terms = [w * score.get(index[name], 0) / 9 for name, w in c["tags"]]
        primary = index[c["tags"][0][0]]
        r = rank.get(primary)
        rank_feature = f" prank_{min(r, 3)}" if r is not None else " prank_none"
        out.append(f" |M best:{max(terms):.4f} sum:{sum(terms):.4f} primary:{terms[0]:.4f} "
                   f"others:{sum(terms[1:]):.4f}{rank_feature}")
    return out


def shared_line(request, personas):
    scores = request["scores"]
    person = " ".join(f"{personas[p].replace(' ', '_')}:{s / 9:.4f}" for p, s in scores)
    top = max(scores, key=lambda ps: ps[1], default=None)
    if top is not None:
        person += f" top_{personas[top[0]].replace(' ', '_')}"
    moment = f"dev_{request['device']} dp_{request['daypart']} we_{int(request['weekend'])}"
    return f"shared |U {person} |X {moment}"


def play(path, args):
    with open(path, encoding="utf-8") as f:
        header = json.loads(f.readline())
        requests = [json.loads(line) for line in f]
    limit = int(os.environ.get("VW_TRIAL_LIMIT", "0"))
    if limit:
        requests = requests[:limit]
    actions = action_lines(header["creatives"])
    n = len(actions)
    matched = args.endswith("+match")
    vw = vowpalwabbit.Workspace(args.removesuffix("+match"))
    rng = random.Random(hash(path) & 0xFFFF_FFFF)
    expected = expected_weak = 0.0
    oracle = oracle_weak = 0.0
    started = time.time()
    for r in requests:
        best = max(f32(x) for x in r["rates"][:n])
        oracle += best
        if not r["strong"]:
            oracle_weak += best
        shared = shared_line(r, header["personas"])
        match = match_features(header["creatives"], r, header["personas"]) if matched else None
        these = [a + m for a, m in zip(actions, match)] if matched else actions
        examples = vw.parse([shared] + these, vowpalwabbit.LabelType.CONTEXTUAL_BANDIT)
        pmf = vw.predict(examples)
        vw.finish_example(examples)
        chosen = rng.choices(range(n), weights=pmf)[0]
        rate = f32(r["rates"][chosen])
        clicked = r["coin"] < rate
        expected += rate
        if not r["strong"]:
            expected_weak += rate
        label = f"0:{-1.0 if clicked else 0.0}:{pmf[chosen]}"
        lines = [shared] + [f"{label} {a}" if i == chosen else a for i, a in enumerate(these)]
        examples = vw.parse(lines, vowpalwabbit.LabelType.CONTEXTUAL_BANDIT)
        vw.learn(examples)
        vw.finish_example(examples)
    vw.finish()
    # The same oracle the trial computed: a check that both read the same world.
    logged = header["strategies"]["oracle"]
    if limit:
        print(f"  first {limit}: {100 * expected / oracle:.1f} % of the oracle", file=sys.stderr)
    elif abs(oracle - logged[0]) > 1e-6 * logged[0] or abs(oracle_weak - logged[1]) > 1e-6 * max(logged[1], 1e-9):
        raise SystemExit(f"{path}: oracle {oracle} / {oracle_weak} here, {logged} in the trial")
    return header, (expected, expected_weak), time.time() - started


def main():
    argv = sys.argv[1:]
    if not argv or argv[0].startswith("-"):
        raise SystemExit(__doc__)
    directory = argv[0]
    configs = dict(CONFIGS)
    if "--config" in argv:
        name = argv[argv.index("--config") + 1]
        configs = {name: CONFIGS.get(name, name)}
    paths = sorted(glob.glob(os.path.join(directory, "trial-*.jsonl")))
    if not paths:
        raise SystemExit(f"no trial-*.jsonl in {directory}: run the trial with --export {directory}")
    print(f"Vowpal Wabbit {vowpalwabbit.__version__}; share of the oracle per world "
          "(mean hidden click rate of what was shown), all requests (people with no score ≥ 7)")
    print()
    names = ENGINE + list(configs)
    print("| world | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    by_family = {}
    for path in paths:
        results = {}
        header = None
        for name, args in configs.items():
            header, sums, seconds = play(path, args)
            results[name] = sums
            print(f"  {os.path.basename(path)} {name}: {seconds:.0f} s", file=sys.stderr)
        strategies = header["strategies"]
        oracle = strategies["oracle"]
        for name in ENGINE:
            results[name] = strategies[name]
        cells = []
        for name in names:
            share = results[name][0] / oracle[0]
            weak = results[name][1] / oracle[1] if oracle[1] > 0 else float("nan")
            by_family.setdefault(header["family"], {}).setdefault(name, []).append(share)
            cells.append(f"{100 * share:.1f} % ({100 * weak:.1f} %)")
        print(f"| {header['world']} | " + " | ".join(cells) + " |", flush=True)
    print()
    print("| family (mean over worlds) | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for family, shares in by_family.items():
        cells = [f"{100 * sum(v) / len(v):.1f} %" for v in (shares[n] for n in names)]
        print(f"| {family} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
