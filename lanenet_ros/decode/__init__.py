"""Network outputs -> lanes: the decoder and its settings, clustering, fitting, marking paint and the hood."""
