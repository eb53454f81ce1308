"""Family `chain`: follow N hops through a `lookup` table (key -> key).

Task text: `follow N hops from KEY`; the table is a JSON object mapping key -> key. The hops go
in blocks of ten. Each block is a top-level task whose thought is the hops still to go (`"347
left"`, then `"340 left"`, `"330 left"` ... `"10 left"`: the first block takes `N % 10` hops, or
ten) and whose subtasks are its hops. A hop's thought counts down inside the block (`"7 left"`
... `"1 left"`), its tool call looks up the key concluded by the previous hop (the prompt's key
for the very first) and its conclusion is the looked-up key; a block concludes its last hop's
key. Each counter is a small edit of the one before it (zero the last digit, or one ten less),
and the state a step needs is always in the last finished sibling, so the `window` rule keeps the live view flat.
"""

from __future__ import annotations

import random
import re
import string

from thread.tasks import Instance, TaskTextError

KEY_RE = re.compile(r"[a-z0-9]{1,12}")
TASK_RE = re.compile(r"\s*follow\s+(\d+)\s+hops?\s+from\s+(\S+)\s*")
KEY_CHARS = string.ascii_lowercase + string.digits
KEY_LENGTHS = (2, 8)  # shortest and longest generated key


def random_key(rng: random.Random) -> str:
    """A key of KEY_LENGTHS characters from [a-z0-9], with a bias towards familiar shapes."""
    shape = rng.random()
    if shape < 0.3:
        return rng.choice(string.ascii_lowercase) + str(rng.randrange(10 ** rng.randint(1, 5)))
    if shape < 0.4:
        return str(rng.randrange(10 ** rng.randint(2, 6))).zfill(rng.randint(2, 4))
    return "".join(rng.choice(KEY_CHARS) for _ in range(rng.randint(*KEY_LENGTHS)))


def random_chain(rng: random.Random, length: int) -> list[str]:
    """`length` distinct random keys."""
    keys: list[str] = []
    seen: set[str] = set()
    while len(keys) < length:
        key = random_key(rng)
        if key not in seen:
            seen.add(key)
            keys.append(key)
    return keys


def task_text(num_hops: int, start: str) -> str:
    return f"follow {num_hops} hops from {start}"


def parse_task(text: str) -> tuple[int, str]:
    """`follow N hops from KEY` -> (N, KEY)."""
    m = TASK_RE.fullmatch(text)
    if not m:
        raise TaskTextError(f"chain task text {text!r}: expected 'follow N hops from KEY'")
    n, key = int(m.group(1)), m.group(2)
    if n < 1:
        raise TaskTextError(f"chain task text {text!r}: N must be >= 1, got {n}")
    if not KEY_RE.fullmatch(key):
        raise TaskTextError(f"chain task text {text!r}: key {key!r} must match {KEY_RE.pattern}")
    return n, key


BLOCK = 10


def hop_task(remaining: int, key: str, value: str) -> dict:
    """The gold task of one hop: `remaining` counts this hop among its block's."""
    return {
        "thought": f"{remaining} left",
        "tooluse": {"tool_name": "lookup", "parameters": {"key": key}, "tool_result": value},
        "conclusion": value,
    }


def block_size(remaining: int) -> int:
    """Hops in the block that starts with `remaining` hops to go."""
    return remaining % BLOCK or BLOCK


def blocks(num_hops: int) -> list[tuple[int, int]]:
    """(first hop index, hops) of each block of an N-hop chain."""
    out, start, remaining = [], 0, num_hops
    while remaining > 0:
        size = block_size(remaining)
        out.append((start, size))
        start, remaining = start + size, remaining - size
    return out


def block_task(num_hops: int, start: int, keys: list[str], first: int = 0) -> dict:
    """The block that starts at hop `start`; `keys[i]` is the key before hop `first + i`.

    Only the hops from `first` on are written (a window of a long block), so `keys` needs the
    keys from hop `first` to the block's end.
    """
    size = block_size(num_hops - start)
    hops = [
        hop_task(start + size - i, keys[i - first], keys[i - first + 1]) for i in range(first, start + size)
    ]
    return {"thought": f"{num_hops - start} left", "subtasks": hops, "conclusion": keys[start + size - first]}


def follow(table: dict[str, str], start: str, num_hops: int) -> list[str]:
    """The keys visited, start included (num_hops + 1 of them)."""
    keys = [start]
    for i in range(num_hops):
        if keys[-1] not in table:
            raise TaskTextError(f"table has no key {keys[-1]!r} (hop {i + 1} of {num_hops})")
        keys.append(table[keys[-1]])
    return keys


def gold_document(num_hops: int, keys: list[str]) -> dict:
    """The document a perfect solver writes for the chain `keys` (num_hops + 1 keys)."""
    assert len(keys) == num_hops + 1, f"{len(keys)=} {num_hops=}"
    tasks = [block_task(num_hops, start, keys[start:], start) for start, _ in blocks(num_hops)]
    return {"reasoning": tasks, "answer": keys[-1]}


def make(size: int, seed: int) -> Instance:
    """A chain instance with `size` hops; the table also holds unrelated keys."""
    rng = random.Random(f"chain-{size}-{seed}")
    keys = random_chain(rng, size + 1 + size // 4 + 4)
    chain, extra = keys[: size + 1], keys[size + 1 :]
    table = dict(zip(chain, chain[1:]))
    for k in extra:
        table[k] = rng.choice(keys)
    return Instance(
        family="chain",
        size=size,
        text=task_text(size, chain[0]),
        answer=chain[-1],
        table=table,
        document=gold_document(size, chain),
    )


def solve_gold(text: str, table: dict[str, str]) -> Instance:
    """The gold instance for a user's task text and table."""
    n, start = parse_task(text)
    keys = follow(table, start, n)
    doc = gold_document(n, keys)
    return Instance("chain", n, text, keys[-1], table, doc)
