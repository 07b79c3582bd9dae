"""Chinese/English text for pages and their scripts, from one table.

Templates use ``{% t "key" %}``; scripts get the same table through ``json_script`` and switch
language without a reload. The language comes from the ``lang`` cookie, then Accept-Language.
"""

from __future__ import annotations

LANGUAGES = ("zh", "en")

TEXT: dict[str, dict[str, str]] = {
    "brand": {"zh": "视频银行", "en": "Video Bank"},
    "lang.switch": {"zh": "English", "en": "中文"},
    "customer.title": {"zh": "远程视频柜员", "en": "Remote video teller"},
    "customer.intro": {
        "zh": "请选择要办理的业务，然后呼叫柜员。通话全程录音录像。",
        "en": "Choose what you need, then call a teller. The whole call is recorded.",
    },
    "customer.business": {"zh": "办理业务", "en": "Business"},
    "customer.call": {"zh": "呼叫柜员", "en": "Call a teller"},
    "customer.hangup": {"zh": "挂断", "en": "Hang up"},
    "customer.you": {"zh": "您的画面", "en": "You"},
    "customer.teller": {"zh": "柜员", "en": "Teller"},
    "status.idle": {"zh": "尚未呼叫", "en": "Not in a call"},
    "status.connecting": {"zh": "正在连接…", "en": "Connecting…"},
    "status.camera": {"zh": "正在打开摄像头和麦克风…", "en": "Opening camera and microphone…"},
    "status.waiting": {"zh": "正在排队，请稍候", "en": "Waiting for a teller"},
    "status.position": {
        "zh": "您前面还有 {ahead} 位，排第 {position} 位",
        "en": "Position {position} in the queue ({ahead} ahead of you)",
    },
    "status.answered": {
        "zh": "柜员已接听，正在建立视频…",
        "en": "A teller answered; starting video…",
    },
    "status.in_call": {"zh": "通话中", "en": "In call"},
    "status.ended": {"zh": "通话已结束", "en": "Call ended"},
    "status.error": {"zh": "出错了：{detail}", "en": "Something went wrong: {detail}"},
    "status.media_failed": {"zh": "视频连接失败", "en": "Video connection failed"},
    "status.camera_denied": {
        "zh": "无法使用摄像头或麦克风，请在浏览器中允许后重试",
        "en": "Camera or microphone unavailable: allow them in the browser and retry",
    },
    "status.offline": {"zh": "离线", "en": "Offline"},
    "status.available": {"zh": "空闲，等待来电", "en": "Available"},
    "status.busy": {"zh": "通话中", "en": "In a call"},
    "status.disconnected": {
        "zh": "与服务器的连接已断开，正在重连…",
        "en": "Connection to the server lost; reconnecting…",
    },
    "console.title": {"zh": "柜员工作台", "en": "Teller console"},
    "console.go_available": {"zh": "开始接听", "en": "Go available"},
    "console.go_offline": {"zh": "暂停接听", "en": "Go offline"},
    "console.waiting": {"zh": "等待中的来电", "en": "Waiting calls"},
    "console.none_waiting": {"zh": "暂无等待的客户", "en": "Nobody is waiting"},
    "console.accept": {"zh": "接听", "en": "Accept"},
    "console.waited": {"zh": "已等待 {s} 秒", "en": "waiting {s} s"},
    "console.customer": {"zh": "客户", "en": "Customer"},
    "console.me": {"zh": "我", "en": "Me"},
    "console.signed_in_as": {"zh": "当前用户", "en": "Signed in as"},
    "console.logout": {"zh": "退出", "en": "Sign out"},
    "console.current_call": {"zh": "当前通话", "en": "Current call"},
    "login.title": {"zh": "柜员登录", "en": "Staff sign-in"},
    "login.username": {"zh": "用户名", "en": "User name"},
    "login.password": {"zh": "密码", "en": "Password"},
    "login.submit": {"zh": "登录", "en": "Sign in"},
    "login.error": {"zh": "用户名或密码错误", "en": "Wrong user name or password"},
    "channel.web": {"zh": "网页", "en": "Web"},
    "channel.app": {"zh": "手机银行", "en": "App"},
    "channel.vtm": {"zh": "VTM", "en": "VTM"},
    "skip": {"zh": "跳到主要内容", "en": "Skip to main content"},
    "status.queue_label": {"zh": "排队位置", "en": "Queue position"},
    "status.teller_answered": {"zh": "已接听，正在建立视频…", "en": "Call taken; starting video…"},
    "status.hung_up": {"zh": "正在挂断…", "en": "Hanging up…"},
    "console.presence": {"zh": "接听状态", "en": "Presence"},
    "console.accept_label": {"zh": "接听：{business}", "en": "Accept: {business}"},
    "console.no_call": {"zh": "当前没有通话", "en": "No call in progress"},
    "console.business": {"zh": "业务", "en": "Business"},
    "error.media_unavailable": {
        "zh": "视频服务暂不可用，请稍后再试",
        "en": "The video service is unavailable; please try again later",
    },
    "error.conflict": {"zh": "该操作当前不可用", "en": "That is not possible right now"},
    "error.not_found": {"zh": "未找到该业务或通话", "en": "That business or call does not exist"},
    "error.bad_token": {"zh": "通话凭证已失效", "en": "The call token has expired"},
    "error.forbidden": {"zh": "没有权限", "en": "Not allowed"},
    "error.generic": {"zh": "服务器无法处理该请求", "en": "The server could not handle that"},
}


def language_for(request) -> str:
    lang = request.COOKIES.get("lang", "")
    if lang in LANGUAGES:
        return lang
    accept = request.headers.get("Accept-Language", "").lower()
    if accept.startswith("en"):
        return "en"
    return "zh"


def table(lang: str) -> dict[str, str]:
    return {key: texts[lang] for key, texts in TEXT.items()}


def language_context(request) -> dict:
    lang = language_for(request)
    return {"lang": lang, "html_lang": "zh-CN" if lang == "zh" else "en", "texts": table(lang)}
