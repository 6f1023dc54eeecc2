"""The listings the first run seeds: three that work offline against demo APIs this app serves, and real-world
templates for public REST APIs that need internet access (and often a key)."""
from __future__ import annotations

CATEGORIES = [
    ("demo", "Demo & learning"), ("developer", "Developer tools"), ("knowledge", "Knowledge & search"),
    ("weather", "Weather & places"), ("media", "Images & media"), ("finance", "Finance & data"),
]

WEATHER_YAML = """\
server:
  name: weather
  config: {baseUrl: "http://127.0.0.1:8000/market-demo"}
tools:
  - name: currentWeather
    description: The current weather (condition, temperature in °C, wind) in a city.
    args:
      - {name: city, description: City name, e.g. Paris., type: string, required: true, position: query}
    requestTemplate: {url: "{{.config.baseUrl}}/weather/current", method: GET}
    responseTemplate: {body: "{{.city}}: {{.condition}}, {{.temperature_c}} °C, wind {{.wind_kph}} km/h"}
  - name: forecast
    description: A forecast of the next days (1 to 7) for a city.
    args:
      - {name: city, description: City name., type: string, required: true, position: query}
      - {name: days, description: How many days (1-7)., type: integer, default: 3, position: query}
    requestTemplate: {url: "{{.config.baseUrl}}/weather/forecast", method: GET}
"""

CATS_YAML = """\
server:
  name: cat-pictures
  config: {baseUrl: "http://127.0.0.1:8000/market-demo"}
tools:
  - name: generateCatImage
    description: Generate a cat image (a picture of a cat) in a colour, optionally with a caption.
    args:
      - {name: color, description: Fur colour., type: string, enum: [orange, black, grey, white, brown], default: orange, position: query}
      - {name: text, description: A caption under the cat (at most 40 characters)., type: string, position: query}
    requestTemplate: {url: "{{.config.baseUrl}}/cats/image", method: GET}
  - name: catFact
    description: A fact about cats.
    args:
      - {name: n, description: Which fact (any number)., type: integer, default: 0, position: query}
    requestTemplate: {url: "{{.config.baseUrl}}/cats/fact", method: GET}
    responseTemplate: {body: "{{.fact}}"}
"""


def _internet(name: str, base: str, tools: str, scheme: str = "") -> str:
    return f"server:\n  name: {name}\n  config: {{baseUrl: \"{base}\"}}\n{scheme}tools:\n{tools}"


GITHUB_YAML = _internet("github", "https://api.github.com", """\
  - name: getRepository
    description: A GitHub repository's description, stars, forks and open issues.
    args:
      - {name: owner, description: Owner (user or organisation)., type: string, required: true, position: path}
      - {name: repo, description: Repository name., type: string, required: true, position: path}
    requestTemplate: {url: "{{.config.baseUrl}}/repos/{owner}/{repo}", method: GET}
  - name: searchIssues
    description: Search GitHub issues and pull requests.
    args:
      - {name: q, description: GitHub search query, e.g. repo:owner/name is:open bug., type: string, required: true, position: query}
    requestTemplate: {url: "{{.config.baseUrl}}/search/issues", method: GET}
""", """\
  securitySchemes:
    - {id: GitHubToken, type: http, scheme: bearer}
  defaultUpstreamSecurity: {id: GitHubToken}
""")

OPENWEATHER_YAML = _internet("openweathermap", "https://api.openweathermap.org/data/2.5", """\
  - name: currentWeatherByCity
    description: Current weather for a city from OpenWeatherMap.
    args:
      - {name: q, description: City name, e.g. London,uk., type: string, required: true, position: query}
      - {name: units, description: standard, metric or imperial., type: string, default: metric, position: query}
    requestTemplate: {url: "{{.config.baseUrl}}/weather", method: GET}
""", """\
  securitySchemes:
    - {id: AppId, type: apiKey, in: query, name: appid}
  defaultUpstreamSecurity: {id: AppId}
""")

NASA_YAML = _internet("nasa-apod", "https://api.nasa.gov", """\
  - name: astronomyPictureOfTheDay
    description: NASA's astronomy picture of the day (title, explanation, image URL) for a date.
    args:
      - {name: date, description: YYYY-MM-DD (default today)., type: string, position: query}
    requestTemplate: {url: "{{.config.baseUrl}}/planetary/apod", method: GET}
""", """\
  securitySchemes:
    - {id: NasaKey, type: apiKey, in: query, name: api_key}
  defaultUpstreamSecurity: {id: NasaKey}
""")

OPEN_METEO_YAML = _internet("open-meteo", "https://api.open-meteo.com/v1", """\
  - name: forecastByCoordinates
    description: Hourly temperature forecast for a latitude and longitude (Open-Meteo, no key).
    args:
      - {name: latitude, description: Latitude., type: number, required: true, position: query}
      - {name: longitude, description: Longitude., type: number, required: true, position: query}
      - {name: hourly, description: Variables., type: string, default: temperature_2m, position: query}
    requestTemplate: {url: "{{.config.baseUrl}}/forecast", method: GET}
""")

WIKIPEDIA_YAML = _internet("wikipedia", "https://en.wikipedia.org/api/rest_v1", """\
  - name: pageSummary
    description: The summary of a Wikipedia article (title, extract, thumbnail).
    args:
      - {name: title, description: Article title, e.g. Model_Context_Protocol., type: string, required: true, position: path}
    requestTemplate: {url: "{{.config.baseUrl}}/page/summary/{title}", method: GET}
    responseTemplate: {body: "{{.title}}: {{.extract}}"}
""")

HACKER_NEWS_YAML = _internet("hacker-news", "https://hacker-news.firebaseio.com/v0", """\
  - name: topStories
    description: The ids of the current top stories on Hacker News.
    requestTemplate: {url: "{{.config.baseUrl}}/topstories.json", method: GET}
  - name: getItem
    description: A Hacker News story or comment by id.
    args:
      - {name: id, description: Item id., type: integer, required: true, position: path}
    requestTemplate: {url: "{{.config.baseUrl}}/item/{id}.json", method: GET}
""")

COUNTRIES_YAML = _internet("rest-countries", "https://restcountries.com/v3.1", """\
  - name: countryByName
    description: Facts about a country (capital, population, region, currencies, languages).
    args:
      - {name: name, description: Country name, e.g. Japan., type: string, required: true, position: path}
    requestTemplate: {url: "{{.config.baseUrl}}/name/{name}", method: GET}
""")

CATAAS_YAML = _internet("cataas", "https://cataas.com", """\
  - name: randomCatImage
    description: A random cat image from Cat as a Service, optionally with a tag.
    args:
      - {name: tag, description: A tag such as cute or orange., type: string, position: path, default: cute}
    requestTemplate: {url: "{{.config.baseUrl}}/cat/{tag}", method: GET}
""")

EXCHANGE_YAML = _internet("exchange-rates", "https://api.frankfurter.app", """\
  - name: latestRates
    description: Latest foreign exchange reference rates (European Central Bank) for a base currency.
    args:
      - {name: from, description: Base currency, e.g. EUR., type: string, default: EUR, position: query}
      - {name: to, description: Comma-separated target currencies, e.g. USD,GBP., type: string, position: query}
    requestTemplate: {url: "{{.config.baseUrl}}/latest", method: GET}
""")


def _readme(title: str, body: str, offline: bool) -> str:
    where = ("Works **offline**: its backend is a demo API served by this gateway itself." if offline else
             "Needs **internet access** from the gateway (and, where noted, a key of the backend's own).")
    return f"{body}\n\n{where}\n"  # the page shows the title itself


def _secret(name: str, label: str, scheme: str, help_text: str, *, required: bool = True) -> dict:
    return {"name": name, "label": label, "help": help_text, "required": required, "secret": True, "scheme": scheme}


# Each: slug, registry name, title, publisher, icon, category, tags, summary, kind, offline, yaml, fields, readme
LISTINGS: list[dict] = [
    {"slug": "petstore", "title": "Pet Store (demo)", "icon": "PS", "category": "demo",
     "tags": ["demo", "pets", "crud", "offline"], "offline": True, "yaml": "petstore",
     "summary": "List, find, add and update pets in the built-in demo pet store.",
     "fields": [_secret("api_key", "Pet store API key", "DemoKey", "The demo pet store's key is demo-key.")],
     "readme": "The pet store REST API shipped with the gateway, as MCP tools: `listPets`, `getPet`, `createPet`, "
               "`updatePet`, `deletePet`.\n\n## Configuration\n\n- **Pet store API key** — sent as `X-API-Key`; "
               "the demo's key is `demo-key`."},
    {"slug": "demo-weather", "title": "Weather (demo)", "icon": "WX", "category": "weather",
     "tags": ["weather", "forecast", "offline"], "offline": True, "yaml": WEATHER_YAML, "fields": [],
     "summary": "Current weather and forecasts for any city, from a built-in demo service.",
     "readme": "Made-up but stable weather for any city: the same city always gives the same answer.\n\n"
               "| tool | what |\n|---|---|\n| `currentWeather` | condition, °C, wind |\n| `forecast` | 1–7 days |"},
    {"slug": "demo-cat-pictures", "title": "Cat Pictures (demo)", "icon": "CP", "category": "media",
     "tags": ["images", "cats", "fun", "offline"], "offline": True, "yaml": CATS_YAML, "fields": [],
     "summary": "Generate a cat image in any colour with a caption, and cat facts.",
     "readme": "Draws a cat (an SVG image) in the colour you ask for, with a caption — and tells cat facts."},
    {"slug": "github", "title": "GitHub", "icon": "GH", "category": "developer",
     "tags": ["git", "issues", "repositories"], "yaml": GITHUB_YAML, "publisher": "GitHub REST API",
     "summary": "Repository details and issue search through the GitHub REST API.",
     "fields": [_secret("token", "GitHub token", "GitHubToken", "A personal access token (read-only is enough).")],
     "readme": "Read repositories and search issues and pull requests."},
    {"slug": "openweathermap", "title": "OpenWeatherMap", "icon": "OW", "category": "weather",
     "tags": ["weather", "forecast"], "yaml": OPENWEATHER_YAML,
     "summary": "Current weather for any city from OpenWeatherMap.",
     "fields": [_secret("appid", "OpenWeatherMap API key", "AppId", "From your OpenWeatherMap account.")],
     "readme": "Current conditions by city name."},
    {"slug": "nasa-apod", "title": "NASA Astronomy Picture of the Day", "icon": "NA", "category": "media",
     "tags": ["space", "images", "nasa"], "yaml": NASA_YAML,
     "summary": "NASA's astronomy picture of the day, with its explanation.",
     "fields": [_secret("api_key", "NASA API key", "NasaKey", "DEMO_KEY works for a few calls an hour.")],
     "readme": "The picture of the day for any date since 1995."},
    {"slug": "open-meteo", "title": "Open-Meteo", "icon": "OM", "category": "weather",
     "tags": ["weather", "forecast", "no key"], "yaml": OPEN_METEO_YAML, "fields": [],
     "summary": "Weather forecasts by coordinates; no key needed.",
     "readme": "Hourly forecasts from Open-Meteo's free API."},
    {"slug": "wikipedia", "title": "Wikipedia", "icon": "WP", "category": "knowledge",
     "tags": ["encyclopedia", "search", "no key"], "yaml": WIKIPEDIA_YAML, "fields": [],
     "summary": "Summaries of Wikipedia articles.", "readme": "The lead section of any English Wikipedia article."},
    {"slug": "hacker-news", "title": "Hacker News", "icon": "HN", "category": "knowledge",
     "tags": ["news", "tech", "no key"], "yaml": HACKER_NEWS_YAML, "fields": [],
     "summary": "Top stories and items from Hacker News.", "readme": "Top stories, and any item by id."},
    {"slug": "rest-countries", "title": "REST Countries", "icon": "RC", "category": "knowledge",
     "tags": ["countries", "geography", "no key"], "yaml": COUNTRIES_YAML, "fields": [],
     "summary": "Capital, population, currencies and languages of any country.", "readme": "Country facts."},
    {"slug": "cataas", "title": "Cat as a Service", "icon": "CA", "category": "media",
     "tags": ["images", "cats", "no key"], "yaml": CATAAS_YAML, "fields": [],
     "summary": "Random cat images from cataas.com.", "readme": "A random cat image, by tag."},
    {"slug": "exchange-rates", "title": "Exchange Rates", "icon": "FX", "category": "finance",
     "tags": ["currency", "finance", "no key"], "yaml": EXCHANGE_YAML, "fields": [],
     "summary": "Latest ECB reference exchange rates.", "readme": "Reference rates published by the ECB."},
    {"slug": "deepwiki", "title": "DeepWiki (remote MCP)", "icon": "DW", "category": "developer",
     "tags": ["documentation", "repositories", "remote"], "kind": "remote", "fields": [],
     "remote_url": "https://mcp.deepwiki.com/mcp", "remote_transport": "streamable_http",
     "summary": "Ask questions about public GitHub repositories' documentation (a remote MCP server).",
     "readme": "A public remote MCP server, served to your clients through this gateway's Direct Proxy."},
]


def readme_for(entry: dict) -> str:
    return _readme(entry["title"], entry["readme"], entry.get("offline", False))
