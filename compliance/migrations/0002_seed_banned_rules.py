"""Seed set of banned-content rules covering every category of R-CMP-3 (operators extend it)."""

import uuid

from django.db import migrations

# (kind, pattern, category, action)
SEED = [
    # 九不准 (nine prohibitions): subversion, secrets, separatism, cults, rumours…
    ("keyword", "颠覆国家政权", "nine_prohibitions", "reject"),
    ("keyword", "泄露国家秘密", "nine_prohibitions", "reject"),
    ("keyword", "民族分裂", "nine_prohibitions", "reject"),
    ("keyword", "邪教组织", "nine_prohibitions", "reject"),
    ("keyword", "散布谣言", "nine_prohibitions", "reject"),
    # fraud impersonating banks
    ("keyword", "银行卡已冻结", "bank_fraud", "reject"),
    ("keyword", "安全账户", "bank_fraud", "reject"),
    ("keyword", "账户异常请点击", "bank_fraud", "reject"),
    ("regex", r"(工商|建设|农业|中国)银行.{0,10}(冻结|异常|升级).{0,20}(点击|登录|http)", "bank_fraud", "reject"),
    # gambling
    ("keyword", "博彩", "gambling", "reject"),
    ("keyword", "赌场", "gambling", "reject"),
    ("keyword", "百家乐", "gambling", "reject"),
    ("keyword", "六合彩", "gambling", "reject"),
    ("keyword", "casino", "gambling", "reject"),
    # pornography
    ("keyword", "色情", "pornography", "reject"),
    ("keyword", "成人视频", "pornography", "reject"),
    ("keyword", "裸聊", "pornography", "reject"),
    # violence
    ("keyword", "暴力恐怖", "violence", "reject"),
    ("keyword", "砍杀", "violence", "reject"),
    # weapons / drugs / counterfeit invoices
    ("keyword", "枪支", "weapons_drugs_invoices", "reject"),
    ("keyword", "冰毒", "weapons_drugs_invoices", "reject"),
    ("keyword", "代开发票", "weapons_drugs_invoices", "reject"),
    ("keyword", "出售发票", "weapons_drugs_invoices", "reject"),
    # fake prizes / jobs / marriage
    ("keyword", "恭喜您中奖", "fake_prizes_jobs_marriage", "reject"),
    ("keyword", "刷单兼职", "fake_prizes_jobs_marriage", "reject"),
    ("keyword", "征婚交友", "fake_prizes_jobs_marriage", "hold"),
    # prostitution (公通字【2005】77号)
    ("keyword", "上门服务小姐", "prostitution", "reject"),
    ("keyword", "援交", "prostitution", "reject"),
    # political content
    ("keyword", "法轮功", "political", "reject"),
    # SP deceptive subscription
    ("keyword", "回复任意内容领取", "sp_deceptive", "reject"),
    ("keyword", "点播即扣费", "sp_deceptive", "hold"),
    # third-party ads
    ("keyword", "代发广告", "third_party_ads", "hold"),
    # unsolicited real-estate / invoice / immigration ads (000)
    ("keyword", "楼盘特价", "unsolicited_ads", "hold"),
    ("keyword", "投资移民", "unsolicited_ads", "hold"),
    # financial marketing (004 §2.3)
    ("keyword", "无抵押贷款", "financial_marketing", "hold"),
    ("keyword", "高息理财", "financial_marketing", "hold"),
    ("keyword", "股票内幕", "financial_marketing", "reject"),
]


def seed(apps, schema_editor):
    BannedRule = apps.get_model("compliance", "BannedRule")
    RuleSetVersion = apps.get_model("compliance", "RuleSetVersion")
    for kind, pattern, category, action in SEED:
        BannedRule.objects.get_or_create(
            kind=kind, pattern=pattern, defaults={"category": category, "action": action, "note": "seed"}
        )
    RuleSetVersion.objects.update_or_create(pk=1, defaults={"stamp": uuid.uuid4()})


def unseed(apps, schema_editor):
    apps.get_model("compliance", "BannedRule").objects.filter(note="seed").delete()


class Migration(migrations.Migration):
    dependencies = [("compliance", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed, hints={"model_name": "bannedrule"})]
