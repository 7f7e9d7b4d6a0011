"""dictlist.py N - a dict/list/str-heavy allocation workload for real-program runs.

Builds N records as dicts of strings/ints/lists, indexes them in dicts, sorts, groups, joins
strings, then drops half and rebuilds: the mix of small objects, growing containers (realloc)
and string building that dominates typical Python programs. Deterministic (fixed seed);
prints one checksum line so runs under different allocators can be compared.
"""
import random
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
rng = random.Random(12345)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 12)))
         for _ in range(2000)]

records = []
for i in range(n):
    rec = {
        "id": i,
        "name": rng.choice(words) + "-" + str(i),
        "tags": [rng.choice(words) for _ in range(rng.randint(0, 8))],
        "score": rng.random(),
    }
    records.append(rec)

by_name = {r["name"]: r for r in records}
by_tag = {}
for r in records:
    for t in r["tags"]:
        by_tag.setdefault(t, []).append(r["id"])

records.sort(key=lambda r: (r["score"], r["name"]))
groups = {}
for r in records:
    groups.setdefault(len(r["tags"]), []).append(r["name"])
text = ";".join(",".join(g[:50]) for g in groups.values())

# churn: drop half, rebuild with longer strings
records = [r for r in records if r["id"] % 2 == 0]
for r in records:
    r["name"] = r["name"] * 3
    r["tags"] = sorted(set(r["tags"]))
blob = "|".join(r["name"] for r in records)

h = 0
for s in (text, blob):
    for ch in s[::7]:
        h = (h * 131 + ord(ch)) % 1000000007
print(len(by_name), len(by_tag), len(records), len(text), len(blob), h)
