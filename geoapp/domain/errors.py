"""The few ways a request can be refused. Each carries a stable code, an HTTP status, and a
sentence in Chinese (the default) and English; the web layer turns them into JSON in one place."""
from __future__ import annotations


class DomainError(Exception):
    code = "invalid"
    status = 400
    zh = "请求无效。"
    en = "The request is invalid."

    def __init__(self, **params):
        self.params = params
        super().__init__(self.message("en"))

    def message(self, lang: str = "zh") -> str:
        template = self.en if lang == "en" else self.zh
        return template.format(**self.params)


class BadInput(DomainError):
    code = "bad_input"
    zh = "{field_zh}：{problem_zh}"
    en = "{field}: {problem}"


class BadCoordinates(DomainError):
    code = "bad_coordinates"
    zh = "坐标无效：纬度 {lat}、经度 {lon} 超出取值范围（纬度 −90…90，经度 −180…180）。"
    en = "Invalid coordinates: latitude {lat}, longitude {lon} is out of range (latitude −90…90, longitude −180…180)."


class SwappedCoordinates(DomainError):
    code = "swapped_coordinates"
    zh = "纬度和经度似乎填反了：收到纬度 {lat}、经度 {lon}，交换后（纬度 {lon}、经度 {lat}）才在市区内。请检查坐标顺序。"
    en = ("Latitude and longitude appear swapped: got latitude {lat}, longitude {lon}; swapped "
          "(latitude {lon}, longitude {lat}) they fall inside the city. Check the coordinate order.")


class OutsideCity(DomainError):
    code = "outside_city"
    zh = "该位置（纬度 {lat}、经度 {lon}）不在本市范围内，无法受理。"
    en = "The location (latitude {lat}, longitude {lon}) is outside the city; it cannot be accepted."


class UnknownCrs(DomainError):
    code = "unknown_crs"
    zh = "不支持的坐标系“{crs}”；请使用 wgs84（GPS）或 gcj02（微信、高德）。"
    en = "Unsupported coordinate system '{crs}'; use wgs84 (GPS) or gcj02 (WeChat, AMap)."


class OffStreet(DomainError):
    code = "off_street"
    status = 422
    zh = "该位置距离{street} {distance} 米；问题点须在重点街路 {tolerance:.0f} 米以内。"
    en = "{distance} m from {street}; reports must be within {tolerance:.0f} m of a key street."


class NoStreets(DomainError):
    code = "no_streets"
    status = 503
    zh = "尚未载入重点街路数据，暂时无法受理。"
    en = "No key streets are loaded yet; reports cannot be accepted."


class UnknownCategory(DomainError):
    code = "unknown_category"
    zh = "未知的问题类别“{category}”；请从 /api/v1/categories 的细项中选择。"
    en = "Unknown category '{category}'; choose an item code from /api/v1/categories."


class NoHandlingUnit(DomainError):
    code = "no_handling_unit"
    status = 422
    zh = "找不到处理该问题的单位（类别需要“{unit_type}”类单位，位置所在责任区未指定）。"
    en = "No unit handles this report (the category needs a '{unit_type}' unit; no zone or street names one here)."


class BadPhoto(DomainError):
    code = "bad_photo"
    zh = "照片无法受理：{problem_zh}"
    en = "The photo cannot be accepted: {problem}"


class PhotoTooLarge(DomainError):
    code = "photo_too_large"
    status = 413
    zh = "照片过大（{size_mb:.1f} MB），上限为 {max_mb:.0f} MB。"
    en = "The photo is too large ({size_mb:.1f} MB); the limit is {max_mb:.0f} MB."


class ClientIdConflict(DomainError):
    code = "client_id_conflict"
    status = 409
    zh = "该提交编号（client_id）已被其他用户使用；请重新生成编号后提交。"
    en = "This client_id was already used by another user; generate a new one and submit again."


class NotARepresentative(DomainError):
    code = "forbidden"
    status = 403
    zh = "只有人大代表账号可以提交问题。"
    en = "Only representative accounts can submit reports."


class PhotoTooManyPixels(DomainError):
    code = "photo_too_many_pixels"
    status = 422
    zh = "照片尺寸过大（{width}×{height} 像素，约 {megapixels:.0f} 百万像素），{format} 图片上限为 {max_megapixels:.0f} 百万像素。请发送手机相机直接拍摄的照片或缩小后再发送。"
    en = ("The photo is too large in pixels ({width}×{height}, about {megapixels:.0f} megapixels); the limit for "
          "{format} images is {max_megapixels:.0f} megapixels. Send the photo as the phone's camera took it, or scale it down.")


class PhotoFormatUnsupported(DomainError):
    code = "photo_format_unsupported"
    status = 415
    zh = "暂不支持 {format} 格式的照片。请发送 JPEG：iPhone 可在“设置 → 相机 → 格式”中选择“兼容性最佳”，或从微信相册选择照片（微信会转换为 JPEG）。"
    en = ("{format} photos are not supported yet. Send a JPEG: on an iPhone choose Settings → Camera → Formats → "
          "Most Compatible, or pick the photo through WeChat, which converts it to JPEG.")


class BodyTooLarge(DomainError):
    code = "body_too_large"
    status = 413
    zh = "请求体过大（{size_kb:.0f} KB），不附照片的请求上限为 {max_kb:.0f} KB；照片请用 multipart/form-data 的 photo 字段发送。"
    en = ("The request body is too large ({size_kb:.0f} KB); without a photo the limit is {max_kb:.0f} KB. "
          "Send photos as the photo field of a multipart/form-data request.")


class ClientIdReused(DomainError):
    code = "client_id_reused"
    status = 409
    zh = "该提交编号（client_id）已用于另一条内容不同的问题（编号 {report_id}）；新问题请重新生成编号。"
    en = ("This client_id was already used for a different report (number {report_id}); "
          "generate a new client_id for a new report.")


class Unavailable(DomainError):
    """The service cannot answer now but will soon: 503 with Retry-After."""
    status = 503
    retry_after = 10

    def __init__(self, **params):
        params.setdefault("retry_after", self.retry_after)
        super().__init__(**params)


class DatabaseUnavailable(Unavailable):
    code = "database_unavailable"
    zh = "数据库暂时无法连接，本次请求未保存任何内容。请稍后（约 {retry_after} 秒后）重试；手机端会自动重发。"
    en = ("The database cannot be reached right now; nothing from this request was stored. "
          "Try again in about {retry_after} seconds; the phone resends on its own.")


class PhotoStoreUnavailable(Unavailable):
    code = "photo_store_unavailable"
    zh = "照片存储暂时不可用（{reason}），本次请求未保存任何内容。请稍后重试，并请管理员检查存储空间。"
    en = "The photo store is unavailable ({reason}); nothing from this request was stored. Try again later and ask an administrator to check the storage."
    retry_after = 60


class ServerBusy(Unavailable):
    code = "server_busy"
    zh = "服务器正忙（同时处理的照片过多），本次请求未保存任何内容。请约 {retry_after} 秒后重试。"
    en = "The server is busy (too many photos being processed at once); nothing from this request was stored. Try again in about {retry_after} seconds."
    retry_after = 5
