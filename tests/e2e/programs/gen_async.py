import asyncio

import tm_oracle  # noqa: F401

KEEP = []


def producer(n):
    for i in range(n):
        yield ["gen", i, str(i) * 3]


def consume():
    for item in producer(3000):
        KEEP.append(item)


async def worker(i):
    await asyncio.sleep(0)
    data = [bytes(100 + i % 50) for _ in range(20)]
    await asyncio.sleep(0)
    return data


async def main():
    results = await asyncio.gather(*(worker(i) for i in range(150)))
    KEEP.extend(results)


consume()
asyncio.run(main())
print(len(KEEP))
