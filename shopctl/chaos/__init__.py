"""Chaos on demand (`make chaos`, `make chaos-all`): experiments in Chaos Toolkit's
format under chaos/experiments/, run by chaostoolkit-lib under a steady Locust load, each
ending with the invariants. `actions` and `probes` are what the experiment files call;
`target` says which stack they act on; `run` drives one experiment and measures it;
`report` writes the table."""
