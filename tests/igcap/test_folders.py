from igcap.folders import visible_files


def test_hidden_files_and_folders_are_left_out_below_the_folder_named(tmp_path):
    root = tmp_path / ".photos"  # the folder named may itself be hidden
    for name in ("b.jpg", "a.jpg", "._a.jpg", "sub/c.png", "sub/._c.png", ".thumbs/a.jpg", "sub/.git/x.jpg"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")
    assert visible_files(root, "**/*") == [root / "a.jpg", root / "b.jpg", root / "sub" / "c.png"]
    assert visible_files(root, "*.jpg") == [root / "a.jpg", root / "b.jpg"]
    assert visible_files(root) == [root / "a.jpg", root / "b.jpg"]  # files only, not the folder sub/
