"""`make bench`: what the platform serves next to what this machine can serve at all.

One run measures, with the same wrk settings for every row, two ceilings it starts itself
(a plain nginx; nginx in front of two bare FastAPI instances) and the platform through its
gateway (a cached product read; an authenticated cart write), then the checkout capacity.
The platform's figures read as ratios to ceiling B, the same shape without the platform.

- `wrk`: running wrk, reading its output, the write's Lua script
- `ceilings`: the reference servers
- `gateway`: what the platform's rows need (stock, signed-in shoppers)
- `report`: the JSON document, the goals' verdicts, the table, the comparison
- `plot`: the PNG
- `run`: the run itself (`bench`)
"""
