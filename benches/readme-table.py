# Prints the README's verdict table ("The report's claims, tested") from the committed
# docs/experiments/*/summary.json (run `gpu-fmnist experiment --all --report` first); paste it
# over the table. usage: python3 benches/readme-table.py
import json, glob, os, re
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
order = ["mlp-activation","mlp-widths","mlp-depth","mlp-lr","mlp-lr-text","mlp-l2","mlp-dropout","mlp-overfitting","mlp-batchnorm","mlp-epochs","cnn-activation","cnn-optimizer","cnn-filters","cnn-padding","cnn-pooling","cnn-dense","cnn-dropout","cnn-epochs","cnn-vs-mlp","confusion"]
print("| # | study | the report's claim | statements: effect in points [interval] → verdict | seeds | claim |")
print("|---:|---|---|---|---|---|")
for i, name in enumerate(order, 1):
    p = f"{ROOT}/docs/experiments/{name}/summary.json"
    if not os.path.exists(p):
        claim = re.search(r'^claim = "(.*)"', open(f"{ROOT}/experiments/{name}.toml").read(), re.M).group(1).replace("|", "\\|")
        print(f"| {i} | [{name}](experiments/{name}.toml) | {claim} | not yet run on the full data | — | **queued** |"); continue
    s = json.load(open(p))
    if s.get("first_round_left", 0) > 0:
        claim = s["claim"].replace("|", "\\|")
        print(f"| {i} | [{name}](docs/experiments/{name}/REPORT.md) | {claim} | first round under way: {s['records']} trials recorded, {s['first_round_left']} to go | — | **running** |"); continue
    parts = []
    for j in s["statements"]:
        if j["method"] == "binomial":
            eff = f"{j['effect']:.0f}% failed [{j['lo']:.0f}, {j['hi']:.0f}]" if j["effect"] == j["effect"] else "—"
        elif j["effect"] is None:
            eff = "—"
        else:
            eff = f"{j['effect']:+.2f} [{j['lo']:+.2f}, {j['hi']:+.2f}]"
        v = j["verdict"].replace("-", " ").replace("no difference", "no meaningful difference")
        if v == "inconclusive" and j.get("seeds_needed"):
            v += f" (≈ {j['seeds_needed']} seeds)"
        parts.append(f"`{j['statement']}` {eff} → {v}")
    seeds = sorted({len(st['seeds']) + len(st['failed_seeds']) for st in s['settings']})
    seeds = f"{seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])
    verdict = s["verdict"].replace("-", " ").replace("no difference", "no meaningful difference")
    claim = s["claim"].replace("|", "\\|")
    print(f"| {i} | [{name}](docs/experiments/{name}/REPORT.md) | {claim} | {'; '.join(p.replace('|', chr(92)+'|') for p in parts)} | {seeds} | **{verdict}** |")
