"""Text from OCR made comparable: full-width forms to ASCII, traditional characters to simplified.

The recognition models are trained on mixed simplified/traditional text and sometimes answer 漢 for
汉 on a card printed in simplified characters. A full conversion table (OpenCC) is far more than a
resident ID card needs; this table covers the characters likely on one: the labels, the 56
ethnicities, common surnames and given-name characters, place names, address words and issuing
authorities. Only characters that never occur in simplified text are mapped, so a correct reading
is never changed.
"""

from __future__ import annotations

import re
import unicodedata

# Pairs "traditional simplified", grouped by where they appear on the card.
_PAIRS = """
漢汉 華华 國国 證证 號号 碼码 別别 簽签 發发 機机 關关 姓姓
壯壮 維维 爾尔 滿满 鮮鲜 薩萨 頗颇 達达 錫锡 溫温 倫伦 獨独 諾诺 納纳 烏乌 羅罗 東东 鄉乡
張张 劉刘 陳陈 楊杨 黃黄 趙赵 吳吴 孫孙 馬马 鄭郑 謝谢 許许 韓韩 馮冯 鄧邓 蕭萧 葉叶
蘇苏 呂吕 盧卢 鍾钟 鐘钟 譚谭 陸陆 賈贾 韋韦 鄒邹 閻阎 閆闫 賀贺 顧顾 龔龚 萬万 錢钱
嚴严 湯汤 歐欧 諸诸 龍龙 軍军 偉伟 麗丽 強强 傑杰 濤涛 剛刚 輝辉 鵬鹏 飛飞 軒轩 寧宁
凱凯 澤泽 曉晓 靜静 艷艳 豔艳 紅红 鳳凤 潔洁 蘭兰 穎颖 詩诗 悅悦 夢梦 瑤瑶 雲云 買买
熱热 遜逊 額额 魯鲁 紮扎 頓顿 瑪玛 勝胜 義义 興兴 長长 陽阳 區区 縣县 樓楼 單单 組组
鎮镇 門门 園园 灣湾 慶庆 瀋沈 連连 濟济 莊庄 臺台 廈厦 寶宝 齊齐 雙双 遼辽 內内 陝陕
肅肃 貴贵 廣广 與与 橋桥 嶺岭 島岛 風风 豐丰 業业 應应 廠厂 場场 學学 藝艺 閩闽 贛赣
滬沪 晉晋 隴陇 岡冈 崗岗 環环 團团 結结 進进 淩凌 灘滩 濱滨 潤润 錦锦 繡绣 荊荆 書书
諧谐 將将 廟庙 閣阁 鐵铁 鋼钢 塢坞 淨净 體体 衛卫 貨货 運运 電电 視视 開开 鯉鲤 禪禅
滙汇 匯汇 嶽岳 歷历 嶗崂 澗涧 鹽盐 農农 員员 棟栋 層层 戶户 產产 際际 貿贸 墾垦 隊队
礦矿 橫横 繞绕 鄖郧 蔭荫 鄰邻 億亿 誠诚 餘余 廬庐 鬱郁 蘆芦 灣湾 潁颍 營营 寨寨 壩坝
溝沟 灣湾 莊庄 館馆 廳厅 壇坛 陝陕 黨党 線线 圖图 處处 屬属 鄭郑 賓宾 寬宽 堯尧 舊旧
聖圣 會会 蓮莲 協协 爐炉 鐘钟 濰潍 棗枣 錄录 醫医 療疗 藥药 幣币 鄲郸 灤滦 薊蓟 滄沧
樂乐 嶼屿 濤涛 鷺鹭 淮淮 蓋盖 鞏巩 鎖锁 鐸铎 齡龄 憶忆 儀仪 環环 紀纪 綠绿 銀银 鑫鑫
"""
_TABLE = {
    ord(trad): simp for pair in _PAIRS.split() for trad, simp in [tuple(pair)] if trad != simp
}
_SPACES = re.compile(r"\s+")
# What a recogniser makes of the middle dot of transliterated names (艾力·买买提).
_NAME_DOTS = re.compile(r"(?<=[\u4e00-\u9fff])[.·•・‧∙⋅\-_]+(?=[\u4e00-\u9fff])")


def traditional_to_simplified(text: str) -> str:
    return text.translate(_TABLE)


def text_normalise(text: str) -> str:
    """NFKC (full-width digits and letters to ASCII), simplified characters, no spaces."""
    return _SPACES.sub("", traditional_to_simplified(unicodedata.normalize("NFKC", text)))


def name_normalise(text: str) -> str:
    """A name as printed: the middle dot of transliterated names in its one true form."""
    return _NAME_DOTS.sub("·", text_normalise(text))
