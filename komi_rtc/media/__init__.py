"""Video in and out: frame sources, the newest-frame slot, RTP timestamps, the jitter buffer
tap and forwarding of encoded video to monitors. aiortc's private names live only in
`aiortc_adapter.py`."""
