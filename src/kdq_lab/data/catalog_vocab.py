"""Vocabulary of the KDQ default catalog: Korean names with English glosses and the
hand-set affinities that drive the generator (see :mod:`kdq_lab.data.catalog`).

Every entry is ``(korean, english, ...)``. Affinities are log-scale boosts on topics.
"""

from __future__ import annotations

# (korean, english, drift per year in log-odds: the AI topics grow over time)
TOPICS: list[tuple[str, str, float]] = [
    ("AI 영상", "AI video", 0.9),
    ("AI 음악", "AI music", 0.8),
    ("생성형 AI 기초", "Generative AI basics", 0.6),
    ("프롬프트 엔지니어링", "Prompt engineering", 0.5),
    ("AI 이미지·일러스트", "AI images & illustration", 0.5),
    ("웹 서비스 만들기", "Building a web service", 0.2),
    ("노코드·자동화", "No-code & automation", 0.4),
    ("데이터 분석", "Data analysis", 0.0),
    ("게임 개발", "Game development", 0.0),
    ("창업·부업", "Start-ups & side businesses", 0.1),
    ("커리어 전환", "Career change", 0.0),
    ("디자인", "Design", -0.2),
    ("마케팅", "Marketing", 0.0),
    ("퍼스널 브랜딩", "Personal branding", 0.1),
    ("글쓰기", "Writing", -0.3),
    ("금융", "Finance", -0.2),
    ("교육·접근성", "Education & accessibility", 0.2),
    ("예술·전시", "Art & exhibitions", -0.1),
]
TOPIC_INDEX = {ko: i for i, (ko, _, _) in enumerate(TOPICS)}
#: Topics where coding experience decides whether a hard item is enjoyable.
TECHNICAL_TOPICS = {
    "웹 서비스 만들기",
    "데이터 분석",
    "게임 개발",
    "노코드·자동화",
    "프롬프트 엔지니어링",
    "생성형 AI 기초",
}

# (korean, english, share of items)
CONTENT_TYPES: list[tuple[str, str, float]] = [
    ("강의", "course", 0.28),
    ("아티클", "article", 0.15),
    ("인터뷰", "interview series", 0.08),
    ("영상", "video", 0.25),
    ("행사", "event", 0.10),
    ("커뮤니티 글", "community post", 0.14),
]
EVENT_KINDS: list[tuple[str, str]] = [
    ("해커톤", "hackathon"),
    ("AI 영화제", "AI film festival"),
    ("워크숍", "workshop"),
    ("밋업", "meetup"),
]
DIFFICULTIES: list[tuple[str, str]] = [("입문", "beginner"), ("중급", "intermediate"), ("고급", "advanced")]
LANGUAGES: list[tuple[str, str, float]] = [
    ("한국어", "Korean", 0.9),
    ("영어", "English", 0.07),
    ("한국어·영어", "Korean & English", 0.03),
]
PRICES: list[tuple[str, str]] = [("무료", "free"), ("유료", "paid")]

# Per-topic tags (korean, english).
TOPIC_TAGS: dict[str, list[tuple[str, str]]] = {
    "AI 영상": [
        ("Runway", "Runway"),
        ("Sora", "Sora"),
        ("영상 편집", "video editing"),
        ("숏폼", "short-form"),
        ("AI 영화제", "AI film festival"),
        ("스토리보드", "storyboard"),
        ("뮤직비디오", "music video"),
    ],
    "AI 음악": [
        ("Suno", "Suno"),
        ("Udio", "Udio"),
        ("작곡", "composing"),
        ("음원 발매", "music release"),
        ("믹싱", "mixing"),
        ("보컬 합성", "voice synthesis"),
    ],
    "생성형 AI 기초": [
        ("ChatGPT", "ChatGPT"),
        ("Claude", "Claude"),
        ("Gemini", "Gemini"),
        ("LLM", "LLM"),
        ("AI 윤리", "AI ethics"),
        ("업무 활용", "AI at work"),
    ],
    "프롬프트 엔지니어링": [
        ("프롬프트", "prompting"),
        ("에이전트", "agents"),
        ("RAG", "RAG"),
        ("업무 활용", "AI at work"),
    ],
    "AI 이미지·일러스트": [
        ("Midjourney", "Midjourney"),
        ("Stable Diffusion", "Stable Diffusion"),
        ("일러스트", "illustration"),
        ("캐릭터 디자인", "character design"),
        ("웹툰", "webtoon"),
    ],
    "웹 서비스 만들기": [
        ("Next.js", "Next.js"),
        ("React", "React"),
        ("배포", "deployment"),
        ("Supabase", "Supabase"),
        ("바이브 코딩", "vibe coding"),
        ("API", "API"),
    ],
    "노코드·자동화": [
        ("Zapier", "Zapier"),
        ("Make", "Make"),
        ("노션", "Notion"),
        ("바이브 코딩", "vibe coding"),
        ("엑셀 자동화", "spreadsheet automation"),
    ],
    "데이터 분석": [
        ("파이썬", "Python"),
        ("SQL", "SQL"),
        ("시각화", "visualisation"),
        ("판다스", "pandas"),
        ("통계", "statistics"),
    ],
    "게임 개발": [
        ("유니티", "Unity"),
        ("언리얼", "Unreal"),
        ("레벨 디자인", "level design"),
        ("인디 게임", "indie games"),
        ("게임 기획", "game design"),
    ],
    "창업·부업": [
        ("스마트스토어", "online store"),
        ("사업계획서", "business plan"),
        ("투자 유치", "fundraising"),
        ("1인 창업", "solo founding"),
        ("수익화", "monetisation"),
    ],
    "커리어 전환": [("이력서", "CV"), ("포트폴리오", "portfolio"), ("면접", "interviews"), ("부트캠프", "bootcamp")],
    "디자인": [("피그마", "Figma"), ("UX", "UX"), ("브랜딩", "branding"), ("타이포그래피", "typography")],
    "마케팅": [
        ("퍼포먼스 마케팅", "performance marketing"),
        ("SNS 마케팅", "social media marketing"),
        ("카피라이팅", "copywriting"),
        ("그로스", "growth"),
    ],
    "퍼스널 브랜딩": [
        ("유튜브", "YouTube"),
        ("인스타그램", "Instagram"),
        ("뉴스레터", "newsletter"),
        ("포트폴리오", "portfolio"),
    ],
    "글쓰기": [
        ("에세이", "essays"),
        ("시나리오", "screenwriting"),
        ("출간", "publishing"),
        ("카피라이팅", "copywriting"),
    ],
    "금융": [("재테크", "personal finance"), ("ETF", "ETF"), ("핀테크", "fintech"), ("세금", "tax")],
    "교육·접근성": [
        ("특수교육", "special education"),
        ("보조공학", "assistive technology"),
        ("수업 자료", "teaching materials"),
        ("디지털 접근성", "digital accessibility"),
        ("AI 교과서", "AI textbooks"),
    ],
    "예술·전시": [
        ("전시 기획", "exhibition planning"),
        ("아트 마켓", "art market"),
        ("미디어 아트", "media art"),
        ("NFT", "NFT"),
        ("작가 노트", "artist statement"),
    ],
}
GENERAL_TAGS: list[tuple[str, str]] = [
    ("입문자 환영", "beginners welcome"),
    ("실습", "hands-on"),
    ("무료 특강", "free lecture"),
    ("커뮤니티", "community"),
    ("수료증", "certificate"),
    ("사례 연구", "case study"),
]

# (korean, english, topic affinities, prior coding level 0..3)
OCCUPATIONS: list[tuple[str, str, dict[str, float], float]] = [
    ("예술인", "artist", {"예술·전시": 2.0, "AI 이미지·일러스트": 1.4, "AI 영상": 1.0, "디자인": 0.8}, 0.3),
    ("아트딜러", "art dealer", {"예술·전시": 2.0, "금융": 0.8, "마케팅": 1.0, "창업·부업": 0.7}, 0.3),
    ("배우", "actor", {"AI 영상": 1.8, "퍼스널 브랜딩": 1.2, "글쓰기": 0.6}, 0.2),
    ("영상 크리에이터", "video creator", {"AI 영상": 2.0, "퍼스널 브랜딩": 1.0, "마케팅": 0.8, "AI 음악": 0.6}, 0.6),
    ("음악가", "musician", {"AI 음악": 2.2, "AI 영상": 0.6, "퍼스널 브랜딩": 0.8}, 0.4),
    ("작가", "writer", {"글쓰기": 2.0, "생성형 AI 기초": 0.8, "퍼스널 브랜딩": 0.6}, 0.3),
    (
        "게임 기획자",
        "game planner",
        {"게임 개발": 2.0, "AI 이미지·일러스트": 1.0, "웹 서비스 만들기": 0.6, "데이터 분석": 0.5},
        1.4,
    ),
    ("은행원", "bank clerk", {"금융": 1.8, "데이터 분석": 1.0, "창업·부업": 1.0, "커리어 전환": 0.6}, 0.6),
    (
        "특수교사",
        "special-education teacher",
        {"교육·접근성": 2.4, "생성형 AI 기초": 1.0, "AI 이미지·일러스트": 0.4},
        0.3,
    ),
    ("교사", "teacher", {"교육·접근성": 1.6, "생성형 AI 기초": 1.0, "글쓰기": 0.5}, 0.4),
    (
        "대학원생",
        "graduate student",
        {"데이터 분석": 1.5, "생성형 AI 기초": 1.2, "프롬프트 엔지니어링": 1.0, "커리어 전환": 0.6},
        1.8,
    ),
    (
        "대학생",
        "undergraduate",
        {"커리어 전환": 1.0, "생성형 AI 기초": 1.0, "웹 서비스 만들기": 0.8, "창업·부업": 0.5},
        1.0,
    ),
    (
        "프론트엔드 개발자",
        "front-end developer",
        {"웹 서비스 만들기": 2.0, "노코드·자동화": 0.6, "디자인": 0.6, "생성형 AI 기초": 0.6},
        3.0,
    ),
    ("백엔드 개발자", "back-end developer", {"웹 서비스 만들기": 1.6, "데이터 분석": 1.0, "노코드·자동화": 0.8}, 3.0),
    ("데이터 분석가", "data analyst", {"데이터 분석": 2.2, "생성형 AI 기초": 0.8, "프롬프트 엔지니어링": 0.6}, 2.4),
    ("마케터", "marketer", {"마케팅": 2.0, "퍼스널 브랜딩": 1.0, "데이터 분석": 0.8, "노코드·자동화": 0.8}, 0.6),
    ("디자이너", "designer", {"디자인": 2.0, "AI 이미지·일러스트": 1.4, "웹 서비스 만들기": 0.5}, 0.8),
    (
        "서비스 기획자",
        "product planner",
        {"웹 서비스 만들기": 1.0, "노코드·자동화": 1.0, "데이터 분석": 0.8, "창업·부업": 0.8},
        1.0,
    ),
    ("공무원", "civil servant", {"커리어 전환": 1.0, "금융": 0.8, "생성형 AI 기초": 0.8}, 0.4),
    ("간호사", "nurse", {"커리어 전환": 1.2, "교육·접근성": 0.6, "생성형 AI 기초": 0.6}, 0.2),
    ("자영업자", "small-business owner", {"창업·부업": 1.8, "마케팅": 1.5, "노코드·자동화": 0.8}, 0.4),
    ("프리랜서 번역가", "freelance translator", {"글쓰기": 1.4, "생성형 AI 기초": 1.2, "창업·부업": 0.6}, 0.5),
    ("유튜버", "YouTuber", {"AI 영상": 1.6, "퍼스널 브랜딩": 1.6, "마케팅": 1.0, "AI 음악": 0.6}, 0.6),
    ("사진작가", "photographer", {"AI 이미지·일러스트": 1.8, "예술·전시": 1.0, "디자인": 0.8}, 0.4),
    ("회계사", "accountant", {"금융": 1.6, "데이터 분석": 1.2, "노코드·자동화": 0.8}, 0.8),
    ("스타트업 창업가", "start-up founder", {"창업·부업": 2.0, "웹 서비스 만들기": 1.0, "마케팅": 1.0}, 1.6),
    ("주부", "homemaker", {"창업·부업": 1.0, "글쓰기": 0.6, "AI 이미지·일러스트": 0.6}, 0.2),
    ("구직자", "job seeker", {"커리어 전환": 2.0, "생성형 AI 기초": 1.0, "데이터 분석": 0.6}, 0.8),
]
OCCUPATION_INDEX = {ko: i for i, (ko, _, _, _) in enumerate(OCCUPATIONS)}

#: n잡러 (multi-job) archetypes seen on KDQ; other multi-job profiles are drawn at random.
NJOB_ARCHETYPES: list[tuple[str, ...]] = [
    ("예술인", "아트딜러", "배우", "영상 크리에이터"),
    ("음악가", "영상 크리에이터"),
    ("배우", "유튜버"),
    ("디자이너", "사진작가"),
    ("은행원", "유튜버"),
    ("작가", "프리랜서 번역가"),
    ("게임 기획자", "대학원생"),
    ("교사", "작가"),
    ("마케터", "자영업자"),
    ("프론트엔드 개발자", "스타트업 창업가"),
    ("간호사", "작가"),
    ("회계사", "유튜버"),
    ("예술인", "배우"),
]

# (korean, english, topic affinities, content types it pulls towards)
GOALS: list[tuple[str, str, dict[str, float], dict[str, float]]] = [
    (
        "AI로 영화 만들기",
        "make a film with AI",
        {"AI 영상": 2.5, "AI 음악": 0.6, "글쓰기": 0.5},
        {"행사": 0.6, "영상": 0.3},
    ),
    ("AI 음악 발매", "release AI music", {"AI 음악": 2.5, "퍼스널 브랜딩": 0.6}, {"강의": 0.3}),
    (
        "나만의 웹 서비스 만들기",
        "ship my own web service",
        {"웹 서비스 만들기": 2.2, "노코드·자동화": 1.2, "창업·부업": 0.6},
        {"강의": 0.4, "행사": 0.3},
    ),
    ("이직", "change jobs", {"커리어 전환": 2.0, "데이터 분석": 0.6}, {"인터뷰": 0.5, "아티클": 0.3}),
    ("부업", "side income", {"창업·부업": 2.0, "마케팅": 0.8, "퍼스널 브랜딩": 0.6}, {"아티클": 0.3}),
    (
        "업무 자동화",
        "automate my work",
        {"노코드·자동화": 2.0, "생성형 AI 기초": 0.8, "데이터 분석": 0.6},
        {"강의": 0.3, "영상": 0.3},
    ),
    (
        "포트폴리오 만들기",
        "build a portfolio",
        {"디자인": 1.0, "AI 이미지·일러스트": 1.0, "웹 서비스 만들기": 0.6, "퍼스널 브랜딩": 0.8},
        {"커뮤니티 글": 0.3},
    ),
    (
        "창업",
        "start a company",
        {"창업·부업": 2.0, "마케팅": 1.0, "웹 서비스 만들기": 0.8},
        {"인터뷰": 0.5, "행사": 0.3},
    ),
    (
        "AI로 수업 자료 만들기",
        "make teaching materials with AI",
        {"교육·접근성": 2.0, "생성형 AI 기초": 1.2, "AI 이미지·일러스트": 0.6},
        {"강의": 0.3, "커뮤니티 글": 0.4},
    ),
    (
        "해커톤 참가",
        "join a hackathon",
        {"웹 서비스 만들기": 1.2, "생성형 AI 기초": 1.0, "게임 개발": 0.6},
        {"행사": 1.2},
    ),
    ("재테크", "grow my savings", {"금융": 2.2}, {"아티클": 0.4, "영상": 0.3}),
    ("책 출간", "publish a book", {"글쓰기": 2.2, "AI 이미지·일러스트": 0.5}, {"아티클": 0.3, "인터뷰": 0.3}),
    ("전시 열기", "hold an exhibition", {"예술·전시": 2.0, "AI 이미지·일러스트": 1.0}, {"행사": 0.6}),
    (
        "게임 출시",
        "launch a game",
        {"게임 개발": 2.4, "AI 이미지·일러스트": 0.6, "AI 음악": 0.4},
        {"행사": 0.4, "강의": 0.3},
    ),
]

CODING_LEVELS: list[tuple[str, str]] = [
    ("없음", "none"),
    ("입문", "beginner"),
    ("중급", "intermediate"),
    ("현업", "professional"),
]

# (korean, english, share of users, topic affinities)
AGE_BANDS: list[tuple[str, str, float, dict[str, float]]] = [
    ("10대", "teens", 0.05, {"게임 개발": 0.5, "AI 음악": 0.3}),
    ("20대", "20s", 0.34, {"커리어 전환": 0.4, "AI 영상": 0.2}),
    ("30대", "30s", 0.32, {"창업·부업": 0.3}),
    ("40대", "40s", 0.19, {"금융": 0.3, "교육·접근성": 0.2}),
    ("50대 이상", "50+", 0.10, {"금융": 0.5, "글쓰기": 0.3}),
]
REGIONS: list[tuple[str, float]] = [
    ("서울", 0.38),
    ("경기", 0.24),
    ("인천", 0.05),
    ("부산", 0.06),
    ("대구", 0.04),
    ("대전", 0.03),
    ("광주", 0.03),
    ("울산", 0.02),
    ("세종", 0.01),
    ("강원", 0.02),
    ("충청", 0.03),
    ("전라", 0.03),
    ("경상", 0.03),
    ("제주", 0.01),
    ("해외", 0.02),
]

# Project phrases per topic for titles: (korean, english).
TOPIC_PROJECTS: dict[str, list[tuple[str, str]]] = {
    "AI 영상": [
        ("3분 단편영화 만들기", "make a 3-minute short film"),
        ("AI 뮤직비디오 만들기", "make an AI music video"),
        ("AI 영화제 출품작 완성하기", "finish an AI film-festival entry"),
    ],
    "AI 음악": [
        ("첫 AI 음원 발매하기", "release your first AI track"),
        ("AI로 OST 작곡하기", "compose a soundtrack with AI"),
    ],
    "생성형 AI 기초": [
        ("생성형 AI 제대로 시작하기", "start with generative AI properly"),
        ("AI 비서 200% 활용하기", "get the most from an AI assistant"),
    ],
    "프롬프트 엔지니어링": [
        ("업무용 프롬프트 설계하기", "design prompts for work"),
        ("나만의 AI 에이전트 만들기", "build your own AI agent"),
    ],
    "AI 이미지·일러스트": [
        ("AI로 그림책 만들기", "make a picture book with AI"),
        ("캐릭터 일러스트 완성하기", "finish a character illustration"),
    ],
    "웹 서비스 만들기": [
        ("주말에 웹 서비스 출시하기", "ship a web service in a weekend"),
        ("바이브 코딩으로 MVP 만들기", "build an MVP by vibe coding"),
    ],
    "노코드·자동화": [
        ("반복 업무 자동화하기", "automate repetitive work"),
        ("노코드로 사내 툴 만들기", "build an internal tool without code"),
    ],
    "데이터 분석": [
        ("엑셀에서 파이썬으로 넘어가기", "move from spreadsheets to Python"),
        ("데이터로 의사결정하기", "decide with data"),
    ],
    "게임 개발": [
        ("첫 인디 게임 출시하기", "launch your first indie game"),
        ("AI로 게임 에셋 만들기", "make game assets with AI"),
    ],
    "창업·부업": [
        ("월 100만원 부업 만들기", "build a side income of 1M won a month"),
        ("1인 창업 첫 매출 내기", "make a solo start-up's first sale"),
    ],
    "커리어 전환": [
        ("비전공자 개발자 되기", "become a developer without a CS degree"),
        ("AI 시대 이직 준비하기", "prepare a job change in the AI era"),
    ],
    "디자인": [
        ("피그마로 앱 화면 만들기", "design app screens in Figma"),
        ("브랜드 아이덴티티 만들기", "create a brand identity"),
    ],
    "마케팅": [
        ("SNS 광고 성과 두 배 만들기", "double your social ad results"),
        ("AI로 카피 쓰기", "write copy with AI"),
    ],
    "퍼스널 브랜딩": [
        ("유튜브 채널 키우기", "grow a YouTube channel"),
        ("뉴스레터 1,000명 모으기", "reach 1,000 newsletter readers"),
    ],
    "글쓰기": [
        ("AI와 함께 에세이 쓰기", "write essays with AI"),
        ("시나리오 초고 완성하기", "finish a first screenplay draft"),
    ],
    "금융": [
        ("사회초년생 재테크 시작하기", "start personal finance in your first job"),
        ("ETF로 노후 준비하기", "prepare for retirement with ETFs"),
    ],
    "교육·접근성": [
        ("장애 학생을 위한 AI 수업 자료 만들기", "make AI teaching materials for students with disabilities"),
        ("디지털 접근성 점검하기", "audit digital accessibility"),
    ],
    "예술·전시": [
        ("첫 개인전 준비하기", "prepare a first solo exhibition"),
        ("미디어 아트 작품 만들기", "create a media-art piece"),
    ],
}

#: Creator handles are built from these parts: a prefix and a kind of studio.
CREATOR_PREFIXES: list[tuple[str, str]] = [
    ("큰일", "Big Deal"),
    ("새벽", "Dawn"),
    ("바다", "Sea"),
    ("한빛", "Hanbit"),
    ("초록", "Green"),
    ("다락방", "Attic"),
    ("별빛", "Starlight"),
    ("온새미로", "Onsaemiro"),
    ("나무", "Tree"),
    ("파도", "Wave"),
    ("도토리", "Acorn"),
    ("구름", "Cloud"),
    ("하늘", "Sky"),
    ("모래", "Sand"),
    ("봄날", "Spring Day"),
    ("반딧불", "Firefly"),
]
CREATOR_KINDS: list[tuple[str, str]] = [
    ("스튜디오", "Studio"),
    ("랩", "Lab"),
    ("클래스", "Class"),
    ("연구소", "Institute"),
    ("크루", "Crew"),
    ("아카데미", "Academy"),
]
INTERVIEWEES: list[str] = [
    "김하늘",
    "이서준",
    "박지민",
    "최유나",
    "정민호",
    "강수빈",
    "조은별",
    "윤도현",
    "한소희",
    "임재원",
    "오세린",
    "서지후",
]
