def test_pretrained_fixture_writes_checkpoint(pretrained_ckpt):
    import torch
    ck = torch.load(pretrained_ckpt, weights_only=True)
    assert ck["format"] == "sca2lstm-checkpoint-v1"
    assert set(ck["basins"]) == {"32006", "10002", "10003"}
