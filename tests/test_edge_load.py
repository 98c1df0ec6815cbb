"""文本文件的编码：Big5、Shift-JIS 不再被当成 GB18030 存成乱码（可靠性探测 F11），UTF-8/GBK 照旧。"""

from __future__ import annotations

import pytest

from helpers.knowledge import LoadError, decode_text, load_file

BIG5 = "紫藤書院的院長每天早上在院子裡散步，學生們在圖書館讀書。這份簡介用繁體中文寫成。"
SHIFT_JIS = "藤の書院の院長は毎朝庭を散歩します。学生たちは図書館で本を読みます。"
GBK_SIMPLIFIED = "检索增强生成是构建知识库问答系统最主流的技术路线。本文先说明为什么需要它。"
GBK_TRADITIONAL = "紫藤書院的院長每天早上在院子裡散步"


@pytest.mark.parametrize(("text", "encoding"), [
    (BIG5, "big5"), (SHIFT_JIS, "shift_jis"), ("紫藤書院的院長。", "big5"), ("藤の書院の院長", "shift_jis"),
])
def test_big5_and_shift_jis_are_decoded_not_turned_into_mojibake(tmp_path, text, encoding):
    path = tmp_path / "doc.txt"
    path.write_bytes(text.encode(encoding))
    assert load_file(path, tmp_path)[0].page_content == text


@pytest.mark.parametrize(("text", "encoding"), [
    (GBK_SIMPLIFIED, "gbk"), (GBK_TRADITIONAL, "gbk"), ("你好", "gbk"), ("中文 ABC 123", "gb18030"),
    (BIG5, "utf-8"), (SHIFT_JIS, "utf-8"),
])
def test_utf8_and_gbk_keep_their_old_decoding(text, encoding):
    decoded, used = decode_text(text.encode(encoding))
    assert decoded == text and used == ("utf-8" if encoding == "utf-8" else "gb18030")


@pytest.mark.parametrize("data", [bytes(range(128, 256)) * 10, b"\xff\xfeabc"])
def test_undecodable_text_is_refused_with_an_encoding_message(data):
    with pytest.raises(LoadError, match="UTF-8"):
        decode_text(data)
