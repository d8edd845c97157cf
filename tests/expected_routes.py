"""Who answers where, written by hand from config/agencies.yaml: the routing tests and the fault
suite check the service against this, not against the directory it reads."""

# Each kabupaten/kota has exactly one polres, and five have a local UPTD PPA.
POLICE = {
    "16.01": "polres_oku", "16.02": "polres_oki", "16.03": "polres_muara_enim", "16.04": "polres_lahat",
    "16.05": "polres_musi_rawas", "16.06": "polres_muba", "16.07": "polres_banyuasin",
    "16.08": "polres_oku_timur", "16.09": "polres_oku_selatan", "16.10": "polres_ogan_ilir",
    "16.11": "polres_empat_lawang", "16.12": "polres_pali", "16.13": "polres_muratara",
    "16.71": "polres_palembang", "16.72": "polres_pagar_alam", "16.73": "polres_lubuklinggau",
    "16.74": "polres_prabumulih",
}
LOCAL_PPA = {"16.01": "uptd_ppa_oku", "16.02": "uptd_ppa_oki", "16.06": "uptd_ppa_muba",
             "16.71": "uptd_ppa_palembang", "16.74": "uptd_ppa_prabumulih"}
