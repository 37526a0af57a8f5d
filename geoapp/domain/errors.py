"""The few ways a request can be refused. Each carries a stable code, an HTTP status, and a
sentence: its msgid (the Chinese text, a str.format template over the error's params), said in the
reader's language — English from the gettext catalog (geoapp/translations). The web layer turns them
into JSON or a page in one place."""
from __future__ import annotations

from ..translations import N_, Text, request_language


class DomainError(Exception):
    code = "invalid"
    status = 400
    text = N_("请求无效。")

    def __init__(self, **params):
        self.params = params
        super().__init__(self.message("en"))

    def message(self, lang: str | None = None) -> str:
        """The sentence in `lang` ("zh" or "en"); by default in the current request's language."""
        lang = lang or request_language()
        if hasattr(self, "zh") and hasattr(self, "en"):  # a class still written the old way, zh/en attributes
            return (self.en if lang == "en" else self.zh).format(**self.params)
        return Text(self.text, **self.params).render(lang)


class BadInput(DomainError):
    code = "bad_input"
    text = N_("{field_label}：{problem}")  # English: "{field}: {problem}", the field as the API spells it


class BadCoordinates(DomainError):
    code = "bad_coordinates"
    text = N_("坐标无效：纬度 {lat}、经度 {lon} 超出取值范围（纬度 −90…90，经度 −180…180）。")


class SwappedCoordinates(DomainError):
    code = "swapped_coordinates"
    text = N_("纬度和经度似乎填反了：收到纬度 {lat}、经度 {lon}，交换后（纬度 {lon}、经度 {lat}）才在市区内。请检查坐标顺序。")


class OutsideCity(DomainError):
    code = "outside_city"
    text = N_("该位置（纬度 {lat}、经度 {lon}）不在本市范围内，无法受理。")


class UnknownCrs(DomainError):
    code = "unknown_crs"
    text = N_("不支持的坐标系“{crs}”；请使用 wgs84（GPS）或 gcj02（微信、高德）。")


class OffStreet(DomainError):
    code = "off_street"
    status = 422
    text = N_("该位置距离{street} {distance} 米；问题点须在重点街路 {tolerance:.0f} 米以内。")


class NoStreets(DomainError):
    code = "no_streets"
    status = 503
    text = N_("尚未载入重点街路数据，暂时无法受理。")


class UnknownCategory(DomainError):
    code = "unknown_category"
    text = N_("未知的问题类别“{category}”；请从 /api/v1/categories 的细项中选择。")


class NoHandlingUnit(DomainError):
    code = "no_handling_unit"
    status = 422
    text = N_("找不到处理该问题的单位（类别需要“{unit_type}”类单位，位置所在责任区未指定）。")


class BadPhoto(DomainError):
    code = "bad_photo"
    text = N_("照片无法受理：{problem_zh}")


class PhotoTooLarge(DomainError):
    code = "photo_too_large"
    status = 413
    text = N_("照片过大（{size_mb:.1f} MB），上限为 {max_mb:.0f} MB。")


class ClientIdConflict(DomainError):
    code = "client_id_conflict"
    status = 409
    text = N_("该提交编号（client_id）已被其他用户使用；请重新生成编号后提交。")


class NotARepresentative(DomainError):
    code = "forbidden"
    status = 403
    text = N_("只有人大代表账号可以提交问题。")


class PhotoTooManyPixels(DomainError):
    code = "photo_too_many_pixels"
    status = 422
    text = N_("照片尺寸过大（{width}×{height} 像素，约 {megapixels:.0f} 百万像素），{format} 图片上限为 {max_megapixels:.0f} 百万像素。请发送手机相机直接拍摄的照片或缩小后再发送。")


class PhotoFormatUnsupported(DomainError):
    code = "photo_format_unsupported"
    status = 415
    text = N_("暂不支持 {format} 格式的照片。请发送 JPEG：iPhone 可在“设置 → 相机 → 格式”中选择“兼容性最佳”，或从微信相册选择照片（微信会转换为 JPEG）。")


class BodyTooLarge(DomainError):
    code = "body_too_large"
    status = 413
    text = N_("请求体过大（{size_kb:.0f} KB），不附照片的请求上限为 {max_kb:.0f} KB；照片请用 multipart/form-data 的 photo 字段发送。")


class ClientIdReused(DomainError):
    code = "client_id_reused"
    status = 409
    text = N_("该提交编号（client_id）已用于另一条内容不同的问题（编号 {report_id}）；新问题请重新生成编号。")


class Unavailable(DomainError):
    """The service cannot answer now but will soon: 503 with Retry-After."""
    status = 503
    retry_after = 10

    def __init__(self, **params):
        params.setdefault("retry_after", self.retry_after)
        super().__init__(**params)


class DatabaseUnavailable(Unavailable):
    code = "database_unavailable"
    text = N_("数据库暂时无法连接，本次请求未保存任何内容。请稍后（约 {retry_after} 秒后）重试；手机端会自动重发。")


class PhotoStoreUnavailable(Unavailable):
    code = "photo_store_unavailable"
    text = N_("照片存储暂时不可用（{reason}），本次请求未保存任何内容。请稍后重试，并请管理员检查存储空间。")
    retry_after = 60


class ServerBusy(Unavailable):
    code = "server_busy"
    text = N_("服务器正忙（同时处理的照片过多），本次请求未保存任何内容。请约 {retry_after} 秒后重试。")
    retry_after = 5


class WalkIdConflict(DomainError):
    code = "walk_id_conflict"
    status = 409
    text = N_("该巡街编号（walk_id）已被其他用户使用；请重新生成编号后开始巡街。")


class WalkChunkReused(DomainError):
    code = "walk_chunk_reused"
    status = 409
    text = N_("巡街 {walk_id} 的第 {chunk} 段已收到过不同的内容；新内容请使用新的段号。")


class UnknownStreet(DomainError):
    code = "unknown_street"
    text = N_("未知的街路编号“{street}”。")


class TooManyPhotos(DomainError):
    code = "too_many_photos"
    text = N_("最多 {max_photos} 张照片（本次收到 {count} 张）。")


# --- the handling lifecycle (domain/lifecycle.py) ----------------------------------------------

class UnknownAction(DomainError):
    code = "unknown_action"
    text = N_("未知的操作“{action}”；可用操作：{allowed}。")


class ActionForbidden(DomainError):
    code = "action_forbidden"
    status = 403
    text = N_("您的角色不能执行“{action_label}”。")


class TransitionNotAllowed(DomainError):
    code = "transition_not_allowed"
    status = 409
    text = N_("该问题当前状态为“{status_label}”，不能执行“{action_label}”。")


class StaleVersion(DomainError):
    code = "stale_version"
    status = 409
    text = N_("该问题已被他人更新（您看到的是第 {seen} 版，现在是第 {version} 版，状态“{status_label}”）。请刷新后再操作。")


class ActionPrecondition(DomainError):
    """A transition the state allows, refused for a reason of the report's own (the sentence says which)."""
    code = "action_refused"
    status = 409
    text = N_("{reason}")


class NotFound(DomainError):
    code = "not_found"
    status = 404
    text = N_("没有找到编号为 {report_id} 的问题。")


class ExportTooLarge(DomainError):
    code = "export_too_large"
    status = 413
    text = N_("符合条件的问题有 {n} 条，超过一次导出的上限 {limit} 条；请缩小筛选范围（日期、街路、单位）。")


# The bimonthly album (domain/album.py)

class BadAlbumPeriod(DomainError):
    code = "bad_album_period"
    text = N_("图册周期须为连续两个整月：从某月 1 日到次月最后一天（例如 2026-09-01 至 2026-10-31）；收到 {from_} 至 {to}。")


class AlbumPeriodNotStarted(DomainError):
    code = "album_period_not_started"
    status = 422
    text = N_("图册周期 {from_} 至 {to} 尚未开始，不能印发。")


class AlbumAlreadyIssued(DomainError):
    code = "album_already_issued"
    status = 409
    text = N_("{from_} 至 {to} 的图册已于 {issued_on} 印发为第 {number} 期；已印发的图册不再重新生成，请下载第 {number} 期。")


class AlbumOutOfOrder(DomainError):
    code = "album_out_of_order"
    status = 409
    text = N_("该周期与已印发的第 {number} 期（{last_from} 至 {last_to}）重叠或早于它；图册按时间顺序编号，新一期须从 {next_from} 或之后开始。")


class AlbumEmpty(DomainError):
    code = "album_empty"
    status = 422
    text = N_("{from_} 至 {to} 没有列入问题图册的问题（调度员在问题页面勾选“列入问题图册”），未印发。")


class AlbumNotFound(DomainError):
    code = "not_found"
    status = 404
    text = N_("没有第 {number} 期问题图册。")


class AlbumFileDamaged(PhotoStoreUnavailable):
    code = "album_file_damaged"
    text = N_("第 {number} 期图册的 PDF 文件缺失或与印发时不符（SHA-256 不一致），请管理员从备份恢复 {path}。")
    retry_after = 3600
