"""UCF101 flow stacks: frames + flow JPEGs in the rawframes layout, sharded and resumable."""
