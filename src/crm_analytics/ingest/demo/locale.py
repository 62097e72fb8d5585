"""Locale data of the demo world: names, cities and regions, categories, search terms and
review/ticket phrases, for ``tr_TR`` (default) and ``en_GB``.

The personal data made from these lists is fake; e-mail addresses use the reserved
``example.*`` domains (RFC 2606) so that no real mailbox is ever named.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Locale", "LOCALES", "get_locale"]


@dataclass(frozen=True)
class Locale:
    code: str
    female_names: tuple[str, ...]
    male_names: tuple[str, ...]
    surnames: tuple[str, ...]
    #: (city, region, population weight)
    cities: tuple[tuple[str, str, float], ...]
    phone_prefix: str
    email_domains: tuple[str, ...]
    #: canonical category label -> (median price, search terms)
    categories: dict[str, tuple[float, tuple[str, ...]]]
    brands: tuple[str, ...]
    #: review language mix: (language, share)
    languages: tuple[tuple[str, float], ...]


_TR_CATEGORIES = {
    "Elektronik": (2400.0, ("kulaklık", "telefon kılıfı", "şarj aleti", "akıllı saat", "bluetooth hoparlör")),
    "Giyim": (650.0, ("elbise", "mont", "kot pantolon", "tişört", "spor ayakkabı")),
    "Kozmetik": (320.0, ("ruj", "nemlendirici", "parfüm", "şampuan", "güneş kremi")),
    "Ev & Yaşam": (780.0, ("nevresim", "tencere seti", "havlu", "kahve makinesi", "masa lambası")),
    "Kitap": (140.0, ("roman", "çocuk kitabı", "polisiye", "tarih kitabı", "kişisel gelişim")),
    "Spor & Outdoor": (900.0, ("yoga matı", "dambıl", "kamp çadırı", "koşu ayakkabısı", "bisiklet kaskı")),
    "Oyuncak": (420.0, ("lego", "peluş", "puzzle", "oyuncak araba", "kutu oyunu")),
    "Süpermarket": (180.0, ("kahve", "deterjan", "zeytinyağı", "bebek bezi", "çay")),
}
_EN_CATEGORIES = {
    "Electronics": (120.0, ("headphones", "phone case", "charger", "smart watch", "bluetooth speaker")),
    "Clothing": (35.0, ("dress", "coat", "jeans", "t-shirt", "trainers")),
    "Beauty": (18.0, ("lipstick", "moisturiser", "perfume", "shampoo", "sun cream")),
    "Home & Living": (40.0, ("duvet cover", "pan set", "towel", "coffee machine", "desk lamp")),
    "Books": (9.0, ("novel", "children's book", "crime", "history book", "self help")),
    "Sports & Outdoor": (45.0, ("yoga mat", "dumbbell", "tent", "running shoes", "bike helmet")),
    "Toys": (22.0, ("lego", "plush toy", "puzzle", "toy car", "board game")),
    "Grocery": (8.0, ("coffee", "detergent", "olive oil", "nappies", "tea")),
}

LOCALES: dict[str, Locale] = {
    "tr_TR": Locale(
        code="tr_TR",
        female_names=("Ayşe", "Fatma", "Zeynep", "Elif", "Emine", "Merve", "Büşra", "Esra", "Selin", "Deniz",
                      "Ceren", "Gizem", "İrem", "Melike", "Şule", "Özge", "Derya", "Yasemin", "Ebru", "Hülya"),
        male_names=("Mehmet", "Mustafa", "Ahmet", "Ali", "Hüseyin", "Hasan", "İbrahim", "Emre", "Murat", "Burak",
                    "Can", "Kerem", "Oğuz", "Serkan", "Tolga", "Uğur", "Yusuf", "Ömer", "Barış", "Çağlar"),
        surnames=("Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Yıldırım", "Öztürk", "Aydın", "Özdemir",
                  "Arslan", "Doğan", "Kılıç", "Aslan", "Çetin", "Kara", "Koç", "Kurt", "Özkan", "Şimşek",
                  "Polat", "Erdoğan", "Güneş", "Aksoy", "Tekin"),
        cities=(
            ("İstanbul", "Marmara", 15.9), ("Ankara", "İç Anadolu", 5.8), ("İzmir", "Ege", 4.5),
            ("Bursa", "Marmara", 3.2), ("Antalya", "Akdeniz", 2.7), ("Konya", "İç Anadolu", 2.3),
            ("Adana", "Akdeniz", 2.3), ("Şanlıurfa", "Güneydoğu Anadolu", 2.2), ("Gaziantep", "Güneydoğu Anadolu", 2.2),
            ("Kocaeli", "Marmara", 2.1), ("Mersin", "Akdeniz", 1.9), ("Diyarbakır", "Güneydoğu Anadolu", 1.8),
            ("Hatay", "Akdeniz", 1.7), ("Manisa", "Ege", 1.5), ("Kayseri", "İç Anadolu", 1.4),
            ("Samsun", "Karadeniz", 1.4), ("Balıkesir", "Marmara", 1.3), ("Van", "Doğu Anadolu", 1.1),
            ("Trabzon", "Karadeniz", 0.8), ("Erzurum", "Doğu Anadolu", 0.8), ("Eskişehir", "İç Anadolu", 0.9),
            ("Denizli", "Ege", 1.1), ("Malatya", "Doğu Anadolu", 0.8), ("Sakarya", "Marmara", 1.1),
        ),
        phone_prefix="+90 5",
        email_domains=("example.com", "example.com.tr", "example.net", "example.org"),
        categories=_TR_CATEGORIES,
        brands=("Anadolu", "Boğaziçi", "Ege Tekstil", "Kapadokya", "Lale", "Marmara", "Nazar", "Pera", "Toros", "Vadi"),
        languages=(("tr", 0.9), ("en", 0.1)),
    ),
    "en_GB": Locale(
        code="en_GB",
        female_names=("Olivia", "Amelia", "Isla", "Ava", "Emily", "Sophia", "Grace", "Mia", "Poppy", "Ella"),
        male_names=("Oliver", "George", "Harry", "Noah", "Jack", "Leo", "Arthur", "Muhammad", "Oscar", "Charlie"),
        surnames=("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Wright",
                  "Robinson", "Thompson", "Evans", "Walker", "White"),
        cities=(
            ("London", "London", 9.0), ("Birmingham", "West Midlands", 1.1), ("Manchester", "North West", 0.6),
            ("Leeds", "Yorkshire", 0.8), ("Glasgow", "Scotland", 0.6), ("Liverpool", "North West", 0.5),
            ("Bristol", "South West", 0.5), ("Edinburgh", "Scotland", 0.5), ("Cardiff", "Wales", 0.4),
            ("Belfast", "Northern Ireland", 0.35), ("Newcastle", "North East", 0.3), ("Norwich", "East of England", 0.15),
        ),
        phone_prefix="+44 7",
        email_domains=("example.com", "example.co.uk", "example.net", "example.org"),
        categories=_EN_CATEGORIES,
        brands=("Albion", "Thames", "Pennine", "Highland", "Cotswold", "Severn", "Moorland", "Kestrel", "Harbour", "Oakwood"),
        languages=(("en", 1.0),),
    ),
}

#: review phrases: language -> sentiment -> topic -> phrases
REVIEW_PHRASES: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "tr": {
        "positive": {
            "delivery": ("Kargo çok hızlı geldi, teşekkürler.", "Ertesi gün elimdeydi, paketleme özenliydi."),
            "price": ("Fiyatına göre gayet başarılı.", "Bu fiyata daha iyisi yok, tavsiye ederim."),
            "quality": ("Ürün kalitesi harika, çok memnun kaldım.", "Malzemesi sağlam, beklediğimden iyi çıktı."),
            "size": ("Beden tam oldu, kalıbı güzel.", "Ölçüleri açıklamadaki gibi, tam oturdu."),
        },
        "neutral": {
            "delivery": ("Kargo biraz gecikti ama ürün sağlam geldi.",),
            "price": ("Fiyatı biraz yüksek ama idare eder.",),
            "quality": ("Ortalama bir ürün, ne iyi ne kötü.",),
            "size": ("Beden biraz büyük geldi, yine de kullanıyorum.",),
        },
        "negative": {
            "delivery": ("Kargo çok geç geldi, kutu ezilmişti.", "Sipariş bir hafta gecikti, çok kötü."),
            "price": ("Bu fiyata hiç değmez, pahalı.", "Fiyatına göre çok kalitesiz."),
            "quality": ("Ürün iki günde bozuldu, hiç memnun değilim.", "Kalitesi çok kötü, iade edeceğim."),
            "size": ("Beden çok küçük geldi, kalıbı dar.", "Ölçüler yanlış, hiç olmadı."),
        },
    },
    "en": {
        "positive": {
            "delivery": ("Arrived next day, well packed.", "Very fast delivery, thank you."),
            "price": ("Great value for the price.", "Cheaper than anywhere else and good."),
            "quality": ("Excellent quality, very happy.", "Well made, better than expected."),
            "size": ("Fits perfectly, true to size.", "Size was exactly as described."),
        },
        "neutral": {
            "delivery": ("Delivery was a bit late but the item was fine.",),
            "price": ("A bit pricey but okay.",),
            "quality": ("Average product, nothing special.",),
            "size": ("Runs slightly large, still wearable.",),
        },
        "negative": {
            "delivery": ("Delivery took over a week and the box was crushed.", "Very late delivery."),
            "price": ("Not worth the money at all.", "Overpriced for what it is."),
            "quality": ("Broke after two days, very disappointed.", "Poor quality, sending it back."),
            "size": ("Far too small, does not fit.", "Sizing is completely off."),
        },
    },
}

TICKET_CATEGORIES = ("delivery_delay", "damaged_item", "wrong_item", "refund", "payment", "account")
TICKET_PHRASES = {
    "tr": {
        "delivery_delay": "Siparişim hâlâ gelmedi.", "damaged_item": "Ürün hasarlı geldi.",
        "wrong_item": "Yanlış ürün gönderilmiş.", "refund": "İade param yatmadı.",
        "payment": "Kartımdan iki kez çekim yapıldı.", "account": "Hesabıma giriş yapamıyorum.",
    },
    "en": {
        "delivery_delay": "My order has not arrived yet.", "damaged_item": "The item arrived damaged.",
        "wrong_item": "I received the wrong item.", "refund": "My refund has not come through.",
        "payment": "I was charged twice.", "account": "I cannot log in to my account.",
    },
}


def get_locale(code: str) -> Locale:
    """The locale *code*; raises ``ParamsError`` naming the supported ones."""
    from crm_analytics.errors import ParamsError

    try:
        return LOCALES[code]
    except KeyError:
        raise ParamsError(f"source.locale {code!r} is not supported by the demo generator; "
                          f"use one of {sorted(LOCALES)}") from None
