"""The showcase: `run` drives the whole pipeline on one machine over the synthetic `world`."""
