"""Helpers shared by the image plugin's tests."""

def randomize(net):
    """Give zero-initialised layers (ADM practice: residual branches start as the identity) random
    weights, so that conformance checks test a network whose output depends on its inputs."""
    import torch

    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            if not p.abs().sum():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return net

