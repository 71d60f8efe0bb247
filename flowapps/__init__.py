"""Applications of optical flow: UCF101 flow stacks, action recognition and motion segmentation."""
