"""The golden reference: transformers 4.57.6's question-answering pipeline on the tiny model."""
