"""Training: a dated dataset in, a scored model out (`job` runs ``azaion-train``)."""
