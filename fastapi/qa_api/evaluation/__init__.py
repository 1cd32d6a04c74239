"""`qa-eval`: the served model on SQuAD files: official EM/F1, latency, throughput."""
