"""The web interface's own words (Chinese first, English with ``?lang=en``).

Codes (actions, roles, channels, statuses, triggers …) are labelled by ``projections.label``,
the same labels as the CLI's; this module holds only what the pages themselves say.
"""

from __future__ import annotations

LANGS = ("zh", "en")

WORDS: dict[str, tuple[str, str]] = {
    "app": ("信访台账", "Petition ledger"),
    "skip": ("跳到正文", "Skip to content"),
    "nav": ("主导航", "Main navigation"),
    "cases": ("案件", "Cases"),
    "reports": ("报表", "Reports"),
    "supervision": ("督办台账", "Supervision ledger"),
    "statistics": ("信访统计", "Statistics"),
    "accountability": ("倒查", "Accountability"),
    "closures": ("三签结案", "Closures"),
    "integrity": ("完整性", "Integrity"),
    "login": ("登录", "Sign in"),
    "logout": ("退出", "Sign out"),
    "enrol": ("登记本机密钥", "Enrol a key"),
    "lost": ("密钥丢失", "Lost key"),
    "lang_switch": ("English", "中文"),
    "signed_in_as": ("当前用户", "Signed in as"),
    "scope_all": ("全部案件", "every case"),
    "scope_jurisdiction": ("本辖区案件", "your jurisdiction's cases"),
    "scope_unit": ("本单位案件", "your unit's cases"),
    "scope_own": ("本人案件", "your own cases"),
    "beijing": ("北京时间", "Beijing time"),
    # login and keys
    "login_title": ("用本人密钥登录", "Sign in with your own key"),
    "login_intro": ("登录时浏览器用保存在本机的私钥对服务器的质询签名；"
                    "私钥不离开本机，也无法导出。",
                    "Your browser signs the server's challenge with the private key kept on "
                    "this device; the key never leaves it and cannot be exported."),
    "keys_here": ("本机保存的密钥", "Keys on this device"),
    "no_keys": ("本机还没有密钥：先登记一把，或载入密钥文件。",
                "No key on this device yet: enrol one, or load a key file."),
    "actor_id": ("人员编号", "Actor id"),
    "key_choice": ("选择密钥", "Choose a key"),
    "sign_in": ("签名登录", "Sign and sign in"),
    "signing": ("正在签名…", "Signing…"),
    "refused": ("登录被拒绝", "Sign-in refused"),
    "refused_hint": ("该密钥可能尚未由管理员登记，或已被轮换、吊销。",
                     "The key may not be registered by the admin yet, or was rotated or "
                     "revoked."),
    "expired": ("会话已过期，请重新登录。", "Your session has expired: please sign in again."),
    "signed_out": ("已退出登录。", "You are signed out."),
    "need_login": ("请先登录。", "Please sign in first."),
    "enrol_title": ("在本机生成密钥", "Make a key on this device"),
    "enrol_intro": ("浏览器在本机生成 Ed25519 密钥（不可导出），保存在本浏览器中。"
                    "把下面的公钥交给管理员登记，"
                    "登记后即可登录。",
                    "Your browser makes an Ed25519 key on this device (not exportable) and "
                    "keeps it in this browser. Give the public key below to the admin; once "
                    "registered, you can sign in."),
    "make_key": ("生成密钥", "Make the key"),
    "replace_key": ("替换本机已有的同名密钥", "Replace the key this device holds for this id"),
    "public_key": ("公钥（PEM）", "Public key (PEM)"),
    "fingerprint": ("指纹", "Fingerprint"),
    "key_id": ("密钥编号", "Key id"),
    "qr": ("公钥二维码", "QR code of the public key"),
    "download_pub": ("下载公钥文件", "Download the public key file"),
    "admin_registers": ("管理员登记（新人员）", "The admin registers it (a new actor)"),
    "admin_rotates": ("或更换已登记人员的密钥", "or replaces a registered actor's key"),
    "load_title": ("载入密钥文件", "Load a key file"),
    "load_intro": ("载入 PKCS#8 PEM 私钥文件（例如演示台账 keys/ 目录中的 inspector-01.key）；"
                   "载入后以不可导出的形式保存在本浏览器中。加密的密钥文件需先解密。",
                   "Load a PKCS#8 PEM private key file (e.g. inspector-01.key from the demo's "
                   "keys/ directory); it is kept in this browser as a non-exportable key. An "
                   "encrypted key file must be decrypted first."),
    "key_file": ("密钥文件", "Key file"),
    "load": ("载入", "Load"),
    "loaded": ("已载入，可以登录。", "Loaded: you can sign in."),
    "made": ("已生成。请把公钥交给管理员登记。", "Made. Give the public key to the admin."),
    "forget": ("从本机删除", "Remove from this device"),
    "no_webcrypto": ("此浏览器不支持 WebCrypto Ed25519，"
                     "或页面不是安全上下文（需 https 或本机地址）。",
                     "This browser lacks WebCrypto Ed25519, or the page is not a secure "
                     "context (https or a loopback address is needed)."),
    "lost_title": ("密钥丢失或泄露怎么办", "If your key is lost or leaked"),
    "lost_steps": ("1. 请管理员吊销旧密钥：xinfang actor revoke-key 人员编号 --reason …；"
                   "2. 在本机重新登记一把密钥（“登记本机密钥”）；"
                   "3. 管理员用新公钥更换："
                   "xinfang actor rotate-key 人员编号 --public-key 新公钥.pub；"
                   "4. 重新登录。旧密钥签过的事件仍然有效，吊销之后它签的任何事件都不会通过验证。",
                   "1. Ask the admin to revoke the old key: xinfang actor revoke-key ID "
                   "--reason …; 2. enrol a new key on this device (\"Enrol a key\"); 3. the "
                   "admin registers it: xinfang actor rotate-key ID --public-key NEW.pub; "
                   "4. sign in again. Events the old key signed stay valid; anything it signs "
                   "after the revocation fails verification."),
    # case list
    "case_list": ("案件列表", "Case list"),
    "search": ("查询", "Search"),
    "reset": ("清除条件", "Clear"),
    "q_case": ("案件编号", "Case number"),
    "q_petitioner": ("信访人（姓名或编号）", "Petitioner (name or id)"),
    "unit": ("承办单位", "Handling unit"),
    "handler": ("承办人", "Handler"),
    "status": ("状态", "Status"),
    "category": ("内容分类", "Category"),
    "channel": ("渠道", "Channel"),
    "source": ("来源", "Source"),
    "trigger": ("倒查线索", "Reverse-check trigger"),
    "supervised": ("仅督办件", "Supervised only"),
    "overdue": ("仅超期件", "Overdue only"),
    "registered_from": ("登记日期自", "Registered from"),
    "registered_to": ("登记日期至", "Registered to"),
    "as_of": ("截至日期", "As of"),
    "sort": ("排序", "Sort by"),
    "per_page": ("每页", "Per page"),
    "any": ("全部", "any"),
    "asc": ("升序", "ascending"),
    "desc": ("降序", "descending"),
    "found": ("共 {n} 件", "{n} cases"),
    "page_of": ("第 {page} / {pages} 页", "page {page} of {pages}"),
    "prev_page": ("上一页", "Previous page"),
    "next_page": ("下一页", "Next page"),
    "no_cases": ("没有符合条件的案件。", "No case matches."),
    "list_stale": ("列表截至日志位置 {position}，正在更新到 {head}。",
                   "The list stands at log position {position}; updating to {head}."),
    "list_from": ("列表来自读模型（截至 {as_of}，日志位置 {position}）。",
                  "Listed from the read model (as of {as_of}, log position {position})."),
    "triggers_pending": ("正在计算倒查线索（大台账首次较慢），稍后自动刷新。",
                         "Computing the reverse-check triggers (slow the first time on a large "
                         "ledger); this page refreshes itself."),
    "triggers_everything": ("倒查线索只对可查看全部案件的人员显示（与接口权限相同）。",
                            "Reverse-check triggers are shown to readers who see every case "
                            "(as the API allows)."),
    "summary": ("信访事项", "Summary"),
    "registered": ("登记日期", "Registered"),
    "due": ("办理期限", "Handling due"),
    "petitioner": ("信访人", "Petitioner"),
    "sort_case": ("案件编号", "case number"),
    "sort_registered": ("登记日期", "registration date"),
    "sort_due": ("办理期限", "handling due"),
    "sort_unit": ("承办单位", "unit"),
    "sort_handler": ("承办人", "handler"),
    "sort_status": ("状态", "status"),
    "download": ("下载", "Download"),
    "print": ("打印", "Print"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    # case page
    "case": ("案件", "Case"),
    "timeline": ("办理经过", "Timeline"),
    "all_verified": ("全部 {n} 个事件通过验证", "all {n} events verified"),
    "some_failed": ("{bad} / {n} 个事件未通过验证", "{bad} of {n} events FAILED verification"),
    "verified": ("通过验证", "verified"),
    "failed": ("未通过验证", "FAILED"),
    "check": ("检查", "check"),
    "business_time": ("业务时间", "Business time"),
    "recorded_time": ("记录时间", "Recorded"),
    "late_by": ("补录，晚 {days} 天", "entered {days} days late"),
    "by": ("操作人", "By"),
    "deadlines": ("当前期限", "Current deadlines"),
    "deadline": ("期限", "Deadline"),
    "date": ("日期", "Date"),
    "state": ("情况", "State"),
    "days_left": ("还剩 {days} 天", "{days} days left"),
    "due_today": ("今天到期", "due today"),
    "days_past": ("已过 {days} 天", "{days} days past"),
    "no_deadline": ("无", "none"),
    "closure": ("三签与办结结论", "The three signatures and the closure"),
    "not_closed": ("本案尚未办结。", "This case is not closed."),
    "case_triggers": ("本案倒查线索", "This case's reverse-check triggers"),
    "no_triggers": ("本案没有倒查线索。", "No reverse-check trigger for this case."),
    "responsible": ("责任人", "Responsible"),
    "evidence": ("证据事件", "Evidence events"),
    "detail": ("情况说明", "Detail"),
    "bundle": ("下载离线证据包", "Download the offline bundle"),
    "bundle_hint": ("证据包可在无数据库的情况下验证：xinfang verify-bundle 文件 --log-key log.pub "
                    "--admin-key admin.pub --show",
                    "A bundle verifies with no database: xinfang verify-bundle FILE --log-key "
                    "log.pub --admin-key admin.pub --show"),
    "redacted": ("本案信访人身份对承办单位隐去（信访工作条例第三十条）。",
                 "The petitioner's identity is hidden from the handling unit (信访工作条例 "
                 "Art. 30)."),
    "judged_at": ("验证结论由服务器按已验证视图逐事件作出（与 xinfang case history 相同）。",
                  "Each verdict is the server's checked view, event by event (as xinfang case "
                  "history)."),
    # reports
    "period_from": ("统计期间自", "Period from"),
    "period_to": ("至", "to"),
    "compare": ("对比", "Compare with"),
    "compare_previous": ("上一期", "the previous period"),
    "compare_year": ("去年同期", "the same period last year"),
    "show": ("显示", "Show"),
    "by_channel": ("按渠道", "By channel"),
    "by_source": ("按来源", "By source"),
    "by_category": ("按内容分类", "By category"),
    "by_month": ("按登记月份", "By month of registration"),
    "by_unit_cases": ("各承办单位信访件", "Cases per handling unit"),
    "reply_rate_units": ("各承办单位办结回复率", "Reply rate per handling unit"),
    "change_chart": ("本期与对比期", "This period and the comparison period"),
    "this_period": ("本期", "this period"),
    "previous_period": ("对比期", "comparison period"),
    "reply_rate": ("办结回复率", "Reply rate"),
    "charts": ("图表", "Charts"),
    "tables": ("报表", "Tables"),
    "unit_filter": ("承办单位（可选）", "Handling unit (optional)"),
    "need_period": ("请给出统计期间（起止日期）。", "Give the period (first and last day)."),
    "figures_cli": ("数字与命令行报表完全相同（同一段代码）。",
                    "The figures are those of the command-line report (one code path)."),
    # integrity
    "latest_checkpoint": ("最新检查点", "Latest checkpoint"),
    "tree_size": ("日志大小（事件数）", "Tree size (events)"),
    "root": ("根哈希", "Root hash"),
    "note": ("签名注记", "Signed note"),
    "cosignatures": ("见证联署", "Witness cosignatures"),
    "witness": ("见证", "Witness"),
    "cosigned_size": ("联署的日志大小", "Cosigned size"),
    "cosigned_at": ("联署时间", "Cosigned at"),
    "no_cosignatures": ("尚无见证联署的检查点。", "No checkpoint has been cosigned yet."),
    "unwitnessed": ("未见证的尾部：{n} 个事件（最新联署检查点之后写入）",
                    "Unwitnessed tail: {n} events (written after the latest cosigned "
                    "checkpoint)"),
    "verify_now": ("立即全面验证", "Verify now"),
    "verify_intro": ("重新逐字节验证整个台账"
                     "（签名、密钥、授权、哈希链、时间、默克尔日志、检查点），"
                     "与 xinfang verify 相同。",
                     "Re-verify the whole ledger byte by byte (signatures, keys, authorization, "
                     "hash chains, times, the Merkle log, checkpoints), as xinfang verify does."),
    "verify_running": ("正在验证…", "Verifying…"),
    "verify_pass": ("验证通过：{events} 个事件，{streams} 个流。",
                    "PASS: {events} events in {streams} streams."),
    "verify_fail": ("验证未通过：{n} 处失败。", "FAIL: {n} failures."),
    "verify_log_only": ("全面验证涉及全部案件，只对可读取原始日志的人员开放。",
                        "Verifying the whole ledger shows every case: for readers of the raw "
                        "log only."),
    "progress": ("进度", "Progress"),
    "where": ("位置", "Where"),
    "reason": ("原因", "Reason"),
    "upload_title": ("验证外来证据包", "Verify a bundle from elsewhere"),
    "upload_intro": ("选择一个离线证据包文件；按下面的信任锚验证后以可读的办理经过显示。"
                     "不填信任锚时使用本台账的日志密钥和管理员密钥。",
                     "Choose an offline bundle file: it is verified under the anchors below "
                     "and shown as a readable case. Without anchors, this ledger's own log "
                     "and admin keys are used."),
    "bundle_file": ("证据包文件", "Bundle file"),
    "log_key_pem": ("日志公钥 log.pub（PEM，可选）", "Log public key log.pub (PEM, optional)"),
    "admin_key_pem": ("管理员公钥 admin.pub（PEM，可选）",
                      "Admin public key admin.pub (PEM, optional)"),
    "verify_bundle": ("验证证据包", "Verify the bundle"),
    "bundle_result": ("证据包验证结果", "Bundle verification"),
    "bundle_pass": ("证据包验证通过：{cases}，{events} 个事件。",
                    "The bundle verifies: {cases}, {events} events."),
    "bundle_fail": ("证据包验证未通过：{n} 处失败。", "The bundle FAILS: {n} failures."),
    "bundle_incomplete": ("注意：证据包未带签名的流头，无法证明其案件没有遗漏后来的事件。",
                          "Note: the bundle carries no signed stream heads, so it cannot show "
                          "that no later event of its cases was left out."),
    "unjudged": ("证据包整体未通过验证，单个事件未作判定。",
                 "The bundle as a whole failed, so its events were not judged."),
    "anchors_used": ("所用信任锚", "Anchors used"),
    "this_ledger": ("本台账的密钥", "this ledger's keys"),
    "uploaded": ("上传的密钥", "the keys given"),
    # errors
    "error": ("出错了", "Something went wrong"),
    "forbidden": ("无权查看", "Not yours to read"),
    "not_found": ("没有这个页面", "No such page"),
    "back": ("返回案件列表", "Back to the case list"),
    "bad_request": ("请求无效", "Invalid request"),
    "csrf": ("请求来源不是本站，已拒绝（防跨站请求伪造）。",
             "The request did not come from this site: refused (cross-site request "
             "forgery protection)."),
}


def word(key: str, lang: str, **facts: object) -> str:
    """A page word in ``lang`` (zh or en), with ``facts`` filled in."""
    zh, en = WORDS[key]
    text = zh if lang == "zh" else en
    return text.format(**facts) if facts else text


__all__ = ["LANGS", "WORDS", "word"]
